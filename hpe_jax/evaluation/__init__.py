"""The evaluation command's outputs: tables, figures and multi-hypothesis sampling.

Modules: `report` (run the shared evaluator over a split and write its files),
`hypotheses` (errors of posterior samples), `figures` (pictures), `images` (image
grids of the shared latent space), `summary` (print what an evaluated workdir holds).
"""
