# Helper scripts: the lab of simulated hosts and the demo.
dist_noinst_SCRIPTS = %reldir%/vmckpt-lab %reldir%/vmckpt-demo \
	%reldir%/vmckpt-lab-image %reldir%/lab-guest-init \
	%reldir%/vmckpt-xen-image %reldir%/xen-dom0-init %reldir%/xen-guest-init \
	%reldir%/check-layout
