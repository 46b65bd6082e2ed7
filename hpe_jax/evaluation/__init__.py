"""Evaluation of trained workdirs: restoring, tables, figures and multi-hypothesis sampling.

Modules: `checkpoint` (restore a workdir), `report` (run an evaluation and
write its files), `hypotheses` (posterior sampling), `figures` (pictures),
`summary` (print what an evaluated workdir holds).
"""
