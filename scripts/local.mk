# Helper scripts: the lab of simulated hosts.
dist_noinst_SCRIPTS = %reldir%/vmckpt-lab
