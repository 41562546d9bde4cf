"""The risk dashboard at /dashboard/, and the API page at /docs, with no outside request.

The dashboard is a static page (`dashboard_static/`: HTML, JavaScript, CSS and the
vendored Chart.js, licence beside it) and two data endpoints:

- `GET /dashboard/api/data`: the aggregates `python -m riskbento dashboard-data` wrote
  (`jobs/dashboard_data.py`: tier mix, scores, action list, top reasons, drift), read
  as a file; nothing is computed in a serving worker;
- `GET /dashboard/api/form`: what the what-if form is prefilled with (the training
  split's median or most common level of each feature) and the batch limit.

The header comes from `GET /model`, the what-if form's fields from `/docs.json`. The page
scores through `/predict` and `/predict_batch` with `X-Riskbento-Source`, so the
prediction log keeps its calls apart from production traffic. With a bearer token set
(`serving/security.py`) the shell and its assets load without it and the page asks for
it; the data endpoints, like the scoring ones, need it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.card import CategoricalReference, ModelCard
from core.settings import Settings

MOUNT_PATH = "/dashboard"
ASSETS_PATH = f"{MOUNT_PATH}/assets/"  # open without a token (security.OPEN_GET_PREFIXES)
SHELL_PATHS = (MOUNT_PATH, f"{MOUNT_PATH}/")  # open without a token too
STATIC_DIR = Path(__file__).parent / "dashboard_static"
SHELL_FILE = "index.html"
TOKEN_MARK = "{{token_required}}"  # in SHELL_FILE: "true" or "false"

# Where the aggregates job writes and this app reads: reports/<use case>/dashboard/data.json
DATA_DIRNAME = "dashboard"
DATA_FILE = "data.json"
DATA_FORMAT = 1

# The Swagger UI BentoML ships (served by it at /static_content/), without the Google Tag
# Manager its own page loads, and with Swagger's online validator badge off.
API_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>riskbento API</title>
  <link rel="stylesheet" href="/static_content/swagger-ui.css">
  <link rel="icon" type="image/png" href="/static_content/favicon-light-32x32.png">
</head>
<body>
  <p style="font-family:sans-serif;margin:8px 16px">
    <a href="/dashboard/">Risk dashboard</a> · <a href="/docs.json">OpenAPI document</a></p>
  <div id="swagger-ui"></div>
  <script src="/static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/docs.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
    });
  </script>
</body>
</html>
"""


def data_path(reports_dir: Path, use_case: str) -> Path:
    """The aggregates file of one use case."""
    return reports_dir / use_case / DATA_DIRNAME / DATA_FILE


async def api_page(_: Request) -> HTMLResponse:
    return HTMLResponse(API_PAGE)


@lru_cache(maxsize=2)
def _shell(token_required: bool) -> str:
    text = (STATIC_DIR / SHELL_FILE).read_text(encoding="utf-8")
    return text.replace(TOKEN_MARK, "true" if token_required else "false")


def typical_record(card: ModelCard) -> dict[str, Any]:
    """The training split's typical customer: median of each numeric feature, most common
    level of each categorical one (None where the split had none)."""
    out: dict[str, Any] = {}
    for name, ref in card.reference.features.items():
        out[name] = ref.mode if isinstance(ref, CategoricalReference) else ref.median
    return out


def app(card: ModelCard, settings: Settings, token_required: bool) -> Starlette:
    """The dashboard as an ASGI app, to mount at MOUNT_PATH."""
    use_case = card.spec.name
    data_file = data_path(settings.reports_dir, use_case)
    form = {
        "use_case": use_case,
        "id_column": card.id_column,
        "typical": typical_record(card),
        "max_batch_records": settings.max_batch_records,
    }

    async def shell(_: Request) -> HTMLResponse:
        return HTMLResponse(_shell(token_required), headers={"Cache-Control": "no-store"})

    async def data(_: Request) -> Response:
        if not data_file.is_file():
            message = (
                f"no dashboard data for {use_case} yet: expected {data_file}; compute it with "
                f"`python -m riskbento dashboard-data {use_case}` (also run by `make drift`)"
            )
            return JSONResponse({"error": message}, status_code=404)
        return FileResponse(data_file, media_type="application/json")

    async def form_view(_: Request) -> Response:
        return Response(json.dumps(form), media_type="application/json")

    return Starlette(
        routes=[
            Route("/", shell),
            Route("/api/data", data),
            Route("/api/form", form_view),
            Mount("/assets", StaticFiles(directory=STATIC_DIR / "assets"), name="assets"),
        ]
    )
