# Benchmarks: not tests. Each prints ratios against baselines measured in
# the same run; see docs/performance.md.
dist_noinst_SCRIPTS += %reldir%/checkpoint-pause %reldir%/job-checkpoint
