"""The operations of the service, each written once and called by every front end.

A workflow takes typed, already-parsed inputs, runs the lower packages' steps in order and returns
a summary; it raises :class:`WorkflowError` (naming the input at fault) on bad input and never
prints. The CLI (`serving.cli`) parses options, calls a workflow and prints its summary; the demo
runs the CLI's stages; the API and the pages call the same functions.

- :mod:`serving.workflows.ingest`: validate files into the record store (quarantine the rest).
- :mod:`serving.workflows.training`: train the general model, then every sector's, register them;
  grade a store with the champions.
- :mod:`serving.workflows.fit`: cross-validate the models on any labelled table (`tiers fit`),
  with the nested choice of ``auto``.
- :mod:`serving.workflows.promotion`: promote a version through the gate, audited in the database;
  the gate runs in one function, `serving.services.model_registry.promote_through_gate`, which the
  pages' and the API's promotions call too, after their permission checks.
- monitoring: `serving.services.monitoring.run_monitoring` (the CLI, the demo and the pages).
- :mod:`serving.workflows.plan`: `tiers plan` on a task file's tables; its draws are the service's
  (`serving.services.plans`: `fix_commitment_v2`, `draw_plan_v2`, `draw_plan`), which the API and
  the pages run on the database.
- :mod:`serving.workflows.profile`, :mod:`serving.workflows.simulate`: profiles into a file, a
  synthetic city.
"""

from __future__ import annotations


class WorkflowError(ValueError):
    """Bad input to a workflow: ``field`` names the input (the CLI maps it to its option); ``message``
    is English, ``zh`` the same sentence in Chinese when the workflow gives one (the CLI prints it
    first: `serving.cli.options.fail`)."""

    def __init__(self, field: str, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.zh = zh
