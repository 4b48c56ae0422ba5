# Documentation installed with vmckpt.
