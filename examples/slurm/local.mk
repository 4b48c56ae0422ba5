# Batch scripts for protected Slurm jobs (docs/slurm.md), shipped as
# documentation.
dist_doc_DATA += %reldir%/heat.sbatch %reldir%/heat-time-limit.sbatch
