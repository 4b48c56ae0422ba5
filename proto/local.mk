# Generated protobuf-c code: built here, never committed.
PROTO_GEN = %reldir%/vmckpt.pb-c.c %reldir%/vmckpt.pb-c.h
BUILT_SOURCES += $(PROTO_GEN)
CLEANFILES += $(PROTO_GEN)
EXTRA_DIST += %reldir%/vmckpt.proto

$(PROTO_GEN): $(top_srcdir)/proto/vmckpt.proto
	$(AM_V_GEN)$(MKDIR_P) $(top_builddir)/proto && \
	$(PROTOC_C) --proto_path=$(top_srcdir) \
		--c_out=$(top_builddir) $(top_srcdir)/proto/vmckpt.proto
