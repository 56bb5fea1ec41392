"""The site icon and logo (`[site] icon` / `logo`): their URLs in the feeds, the files copied.

A value that is an http(s) URL is written into the feeds as it is; any other value is a path
(relative to the config file's folder) whose file is copied to `output_dir/feed-<role><ext>`
on every build (only when its bytes changed) and named by its URL under the feeds' base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from feedpipe.errors import FeedWriteError
from feedpipe.feeds.writer import remove_file, write_if_changed
from feedpipe.settings import IMAGE_PREFIX as PREFIX
from feedpipe.settings import Settings

ROLES = ("icon", "logo")


@dataclass(frozen=True, slots=True)
class SiteImage:
    """One of the site's images: its role, public URL, and the local file to copy (if any)."""

    role: str  # "icon" (small, square) or "logo" (larger)
    url: str
    source: Path | None = None  # None: `url` is the configured URL, nothing to copy

    @property
    def name(self) -> str:
        """The copy's file name under output_dir ('' for a URL)."""
        return f"{PREFIX}{self.role}{self.source.suffix.lower()}" if self.source else ""


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def site_images(settings: Settings) -> tuple[SiteImage, ...]:
    """The configured icon and logo, each as a URL to write and a file to copy."""
    found = []
    for role in ROLES:
        value: str | None = getattr(settings.site, role)
        url = settings.image_url(role)
        if not value or not url:
            continue
        if is_url(value):
            found.append(SiteImage(role, url))
            continue
        path = Path(value)
        found.append(SiteImage(role, url, path if path.is_absolute() else settings.base_dir / path))
    return tuple(found)


def image_url(images: tuple[SiteImage, ...], role: str) -> str | None:
    return next((i.url for i in images if i.role == role), None)


def copy_images(images: tuple[SiteImage, ...], output_dir: Path) -> tuple[list[str], list[str]]:
    """Copy the local images into output_dir; remove earlier copies no longer configured.

    Returns (written, removed) paths relative to output_dir.
    """
    written = []
    for image in images:
        if image.source is None:
            continue
        try:
            data = image.source.read_bytes()
        except OSError as exc:
            raise FeedWriteError(
                f"[site] {image.role}: cannot read {image.source}: {exc.strerror}"
            ) from exc
        if write_if_changed(output_dir, image.name, data):
            written.append(image.name)
    wanted = {i.name for i in images}
    old = sorted(
        p.name
        for p in (output_dir.iterdir() if output_dir.is_dir() else ())
        if p.is_file() and PurePosixPath(p.name).stem in {PREFIX + r for r in ROLES}
    )
    removed = [n for n in old if n not in wanted and remove_file(output_dir, n)]
    return written, removed
