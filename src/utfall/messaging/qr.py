"""QR codes of self-report links (``segno``): SVG for pages, PNG data URLs."""

from __future__ import annotations

import io

import segno


def qr_svg(url: str, *, title: str | None = None, scale: int = 4) -> str:
    """The QR code of ``url`` as a standalone SVG document (dark on white, quiet zone)."""
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, border=4, dark="#000", light="#fff",
              xmldecl=False, svgns=True, title=title, nl=False)
    return out.getvalue().decode()


def qr_png_data_url(url: str, *, scale: int = 5) -> str:
    """The QR code of ``url`` as a ``data:image/png;base64,…`` URL."""
    return segno.make(url, error="m", micro=False).png_data_uri(scale=scale, border=4)
