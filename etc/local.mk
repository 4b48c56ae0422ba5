# The default configuration file and the daemons' state directory.
# 'make install' puts vmckpt.conf in SYSCONFDIR/vmckpt/ only where there is
# none yet: an administrator's file is never replaced. 'make uninstall'
# removes it only if it is still the default, and the directories only if
# they are empty (the cluster key and the state stay).
vmckptconfdir = $(sysconfdir)/vmckpt
VMCKPT_CONF = %reldir%/vmckpt.conf
EXTRA_DIST += %reldir%/vmckpt.conf.in
CLEANFILES += $(VMCKPT_CONF)

# Made at 'make' time: the paths are those configure chose.
$(VMCKPT_CONF): $(top_srcdir)/%reldir%/vmckpt.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) %reldir% && \
	$(SED) -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		-e 's|@statedir[@]|$(vmckpt_statedir)|g' \
		-e 's|@pkglibexecdir[@]|$(pkglibexecdir)|g' \
		-e 's|@sbindir[@]|$(sbindir)|g' \
		$(top_srcdir)/%reldir%/vmckpt.conf.in >$@.tmp && mv $@.tmp $@

all-local: $(VMCKPT_CONF)

install-data-local: install-vmckpt-conf install-vmckpt-statedir
install-vmckpt-conf: $(VMCKPT_CONF)
	$(MKDIR_P) '$(DESTDIR)$(vmckptconfdir)'
	@if test -f '$(DESTDIR)$(vmckptconfdir)/vmckpt.conf'; then \
		echo "keeping $(DESTDIR)$(vmckptconfdir)/vmckpt.conf (not replaced)"; \
	else \
		echo " $(INSTALL_DATA) $(VMCKPT_CONF) '$(DESTDIR)$(vmckptconfdir)/vmckpt.conf'"; \
		$(INSTALL_DATA) $(VMCKPT_CONF) '$(DESTDIR)$(vmckptconfdir)/vmckpt.conf'; \
	fi
# 0700 as the daemons make it: it holds the catalog and guests' images.
install-vmckpt-statedir:
	$(MKDIR_P) '$(DESTDIR)$(vmckpt_statedir)'
	chmod 700 '$(DESTDIR)$(vmckpt_statedir)'

uninstall-local: uninstall-vmckpt-conf
uninstall-vmckpt-conf: $(VMCKPT_CONF)
	@f='$(DESTDIR)$(vmckptconfdir)/vmckpt.conf'; \
	if test -f "$$f" && ! cmp -s $(VMCKPT_CONF) "$$f"; then \
		echo "keeping $$f (changed since it was installed)"; \
	else \
		echo " rm -f $$f"; rm -f "$$f"; \
	fi
	rmdir '$(DESTDIR)$(vmckptconfdir)' '$(DESTDIR)$(vmckpt_statedir)' 2>/dev/null || :
.PHONY: install-vmckpt-conf install-vmckpt-statedir uninstall-vmckpt-conf
