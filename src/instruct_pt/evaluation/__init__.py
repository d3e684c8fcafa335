"""Evaluation: suites of lm-eval tasks, running a model on them, and the domain metrics.

Modules: `suites` (build a suite folder), `task_yaml` (the task YAML files), `local` (built-in
tasks on local data), `lm_tasks` (DomainTask: mean-NLL choice scoring), `hooks` (the metric
hooks lm-eval calls; aggregation of per-document items), `metrics` (the arithmetic), `runner`
(evaluate one model), `render` (documents as the model sees them, for contamination).
"""
