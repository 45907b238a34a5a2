"""``/admin/runs``: the indicator runs (latest stored run, the background job's
progress) for the administrator, who may also start a run by hand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import _redirect
from utfall.web.pages.analytics import run_context, stored_run
from utfall.web.render import render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)


def _job(request: Request) -> Any:
    job = getattr(request.app.state, "runs", None)
    if job is None:  # an app without the job (should not happen): make one
        from utfall.analytics.jobs import RunJob

        job = request.app.state.runs = RunJob(request.app.state.engine)
    return job


@router.get("/admin/runs", response_class=HTMLResponse)
def runs_page(request: Request, principal: Principal = Depends(needs_role("admin"))
              ) -> Response:
    """The latest stored run and the background job's progress."""
    from utfall.analytics.runs import run_is_current

    run = stored_run(request)
    ctx = run_context(request, run)
    status = _job(request).status()
    try:
        current = run_is_current(request.app.state.engine, run)
    except Exception:  # the store is down: say nothing about currency
        current = None
    ctx.update({"status": status, "current": current,
                "started": request.query_params.get("started")})
    return render(request, "runs.html", ctx)


@router.post("/admin/runs")
def start_run(request: Request, form: dict[str, Any] = Depends(checked_form),
              principal: Principal = Depends(needs_role("admin"))) -> Response:
    """Start a run in the background (never inside this request)."""
    started = _job(request).start("admin")
    return _redirect(f"/admin/runs?started={'1' if started else 'busy'}")
