# Helper scripts: the lab of simulated hosts and the demo, run on this
# machine.
dist_noinst_SCRIPTS = %reldir%/vmckpt-lab %reldir%/vmckpt-demo \
	%reldir%/vmckpt-lab-image %reldir%/vmckpt-xen-image \
	%reldir%/check-layout
# Scripts that never run here: the image builders copy them into the
# initramfs of a lab guest (in-guest/) or of the Xen lab's dom0 (in-dom0/),
# where each is /init.
dist_noinst_SCRIPTS += %reldir%/in-guest/lab-guest-init \
	%reldir%/in-guest/xen-guest-init %reldir%/in-dom0/xen-dom0-init
