# The Debian packaging (debian/README.source), shipped in the tarball so
# that the packages build from it (tests/t0800-debian.t does).
EXTRA_DIST += %reldir%/changelog %reldir%/control %reldir%/copyright \
	%reldir%/rules %reldir%/source/format %reldir%/README.source \
	%reldir%/vmckpt-common.README.Debian %reldir%/vmckpt-common.docs \
	%reldir%/vmckpt-agent.install %reldir%/vmckpt-client.install \
	%reldir%/vmckpt-common.install %reldir%/vmckpt-coordinator.install \
	%reldir%/vmckpt-mpi-hooks.install \
	%reldir%/vmckpt-client.lintian-overrides \
	%reldir%/vmckpt-common.lintian-overrides %reldir%/local.mk
