"""`hepablate batch plan|evaluate|sweep`: run a table of cases x options on Dask distributed
(docs/batch.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from hepablate.cli._common import RichProgress, print_json

_SCHEDULER_HELP = (
    "Dask scheduler address (tcp://HOST:8786) of a running cluster; default: a LocalCluster "
    "on this machine."
)


def _run(
    table: Path,
    mode: str,
    sweep: bool,
    out: Path,
    scheduler: str | None,
    workers: int,
    threads: int,
    numba_threads: int | None,
    retries: int,
    no_figures: bool,
    json_out: bool,
) -> None:
    from hepablate.batch import load_tasks, run_batch
    from hepablate.errors import InputError

    if retries < 0:
        raise InputError("must be >= 0", field="--retries")
    tasks = load_tasks(table, "evaluate" if mode == "evaluate" else "plan", sweep=sweep)
    report = run_batch(
        tasks,
        out,
        scheduler=scheduler,
        workers=workers,
        threads=threads,
        numba_threads=numba_threads,
        retries=retries,
        progress=RichProgress(),
        figures=not no_figures,
    )
    if json_out:
        print_json(report.summary())
    else:
        typer.echo(
            f"{report.total} row(s): {report.done} computed, {report.reused} reused, "
            f"{report.failed} failed in {report.wall_s:.1f} s; wrote {out}/results.parquet "
            f"and results.csv"
        )
        for rid, error in report.failures:
            typer.echo(f"  failed: {rid}: {error}")
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    batch = typer.Typer(
        help="Plan or evaluate many cases x options on Dask distributed (docs/batch.md).",
        no_args_is_help=True,
    )
    app.add_typer(batch, name="batch")

    out_opt = typer.Option(..., "--out", help="Output folder (results, table, figures).")
    sched_opt = typer.Option(None, "--scheduler", help=_SCHEDULER_HELP)
    workers_opt = typer.Option(2, "--workers", help="LocalCluster: worker processes.")
    threads_opt = typer.Option(
        1, "--threads", help="LocalCluster: threads (tasks at a time) per worker."
    )
    numba_opt = typer.Option(
        None,
        "--numba-threads",
        help="LocalCluster: NUMBA_NUM_THREADS of each worker (default: cores / workers).",
    )
    retries_opt = typer.Option(
        3, "--retries", help="Times a task is run again after its worker is lost."
    )
    fig_opt = typer.Option(False, "--no-figures", help="Skip the summary PNG figures.")
    json_opt = typer.Option(False, "--json", help="Print the run's summary as JSON.")

    @batch.command("plan")
    def plan(
        table: Path = typer.Argument(..., help="Batch table (.csv or .yaml), one row per plan."),
        out: Path = out_opt,
        scheduler: str | None = sched_opt,
        workers: int = workers_opt,
        threads: int = threads_opt,
        numba_threads: int | None = numba_opt,
        retries: int = retries_opt,
        no_figures: bool = fig_opt,
        json_out: bool = json_opt,
    ) -> None:
        """Plan every row of TABLE (case, modality, planner options, tissue/device
        overrides). Finished rows are never recomputed; the exit code is 1 when a row
        failed (its reason is in results.csv)."""
        _run(
            table, "plan", False, out, scheduler, workers, threads, numba_threads, retries,
            no_figures, json_out,
        )  # fmt: skip

    @batch.command("evaluate")
    def evaluate(
        table: Path = typer.Argument(..., help="Batch table with a 'plan' file in each row."),
        out: Path = out_opt,
        scheduler: str | None = sched_opt,
        workers: int = workers_opt,
        threads: int = threads_opt,
        numba_threads: int | None = numba_opt,
        retries: int = retries_opt,
        no_figures: bool = fig_opt,
        json_out: bool = json_opt,
    ) -> None:
        """Evaluate each row's plan file on its case (as `hepablate simulate` does), with the
        row's tissue, device and criteria overrides."""
        _run(
            table, "evaluate", False, out, scheduler, workers, threads, numba_threads,
            retries, no_figures, json_out,
        )  # fmt: skip

    @batch.command("sweep")
    def sweep(
        spec: Path = typer.Argument(..., help="Sweep file (.yaml): base, cases, grid."),
        out: Path = out_opt,
        scheduler: str | None = sched_opt,
        workers: int = workers_opt,
        threads: int = threads_opt,
        numba_threads: int | None = numba_opt,
        retries: int = retries_opt,
        no_figures: bool = fig_opt,
        json_out: bool = json_opt,
    ) -> None:
        """Plan every case of SPEC for every combination of its parameter grids (planner
        options, tissue and device values); figures of coverage against each swept value."""
        _run(
            spec, "plan", True, out, scheduler, workers, threads, numba_threads, retries,
            no_figures, json_out,
        )  # fmt: skip
