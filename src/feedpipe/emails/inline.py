"""CSS inlining for email HTML: css_inline by default, premailer kept for comparison."""

from __future__ import annotations

import functools
import logging
from typing import Literal

import css_inline

Inliner = Literal["css_inline", "premailer"]


@functools.cache
def _css_inliner() -> css_inline.CSSInliner:
    """Inline plain rules, keep @media in a <style> block, never fetch anything."""
    return css_inline.CSSInliner(
        keep_style_tags=False,
        keep_at_rules=True,
        keep_link_tags=False,
        load_remote_stylesheets=False,
    )


def inline_css(html: str, engine: Inliner = "css_inline") -> str:
    """`html` with its <style> rules moved into style attributes; @media rules stay in <style>."""
    if engine == "premailer":
        return _premailer(html)
    result: str = _css_inliner().inline(html)
    return result


def _premailer(html: str) -> str:
    from premailer import Premailer

    result: str = Premailer(
        html,
        strip_important=False,
        keep_style_tags=False,
        allow_network=False,
        allow_loading_external_files=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_unset_properties=True,
    ).transform()
    return result
