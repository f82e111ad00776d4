"""The training benchmark's corpus: the Jargon File 4.4.7 (public domain, 1.4 MB), from Debian's dict-jargon.

Obtained offline from a package registry and reproducibly: `apt-get download dict-jargon=4.4.7-3.1` (the
ordinary Debian client, which verifies the archive's signatures), then this module checks the .deb's sha256,
takes usr/share/dictd/jargon.dict.dz out of it (a gzip-compatible dictzip file), and writes one document
per paragraph: each blank-line-separated block with its lines joined by single spaces. The result's sha256 is
checked too, so every machine trains on the same bytes. Nothing is committed: the text is cached under
~/.cache/tinyllm-bench (TINYLLM_BENCH_CACHE).

Licence (debian/copyright of dict-jargon): "This document (the Jargon File) is in the public domain, to be
freely used, shared, and modified." Cite it as "The on-line hacker Jargon File, version 4.4.7, 29 Dec 2003".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "dict-jargon", "4.4.7-3.1"
DEB_SHA256 = "405f8168d7994ed2cb71407bb95493daec2e9aa66fc0461dafa74a9d6728a8c1"  # apt-cache show dict-jargon
MEMBER = "./usr/share/dictd/jargon.dict.dz"
CORPUS_SHA256 = "a201cb37baad7e114f7ccc512a9521b11ee2a0f772918b25b1ae8c94a44ca3da"  # of the text written below
CACHE = Path(os.environ.get("TINYLLM_BENCH_CACHE", Path.home() / ".cache" / "tinyllm-bench"))


class CorpusUnavailable(RuntimeError):
    """The corpus cannot be fetched here (no apt-get, no network to Debian, or a changed package)."""


def paragraphs(text: str) -> list[str]:
    """One document per blank-line-separated block, whitespace collapsed."""
    blocks = (" ".join(block.split()) for block in text.split("\n\n"))
    return [block for block in blocks if block and not block.startswith("00-database")]


def jargon_file(cache: Path = CACHE) -> Path:
    """The corpus as a text file (one paragraph a line), fetched and converted on first use."""
    out = cache / f"jargon-{VERSION}.txt"
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == CORPUS_SHA256:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=tmp, check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise CorpusUnavailable(
                f"`apt-get download {PACKAGE}={VERSION}` failed ({exc}); on a machine without "
                "Debian's apt, pass your own text with --corpus"
            ) from None
        deb = next(Path(tmp).glob("*.deb")).read_bytes()
    if hashlib.sha256(deb).hexdigest() != DEB_SHA256:
        raise CorpusUnavailable(f"{PACKAGE} {VERSION}: the downloaded .deb does not have the sha256 {DEB_SHA256}")
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", "/dev/stdin"], input=deb, check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        member = archive.extractfile(MEMBER)  # None for a directory or a link, not a file
        if member is None:
            raise CorpusUnavailable(f"{PACKAGE} {VERSION}: {MEMBER} is not a regular file in the package")
        text = gzip.decompress(member.read()).decode("utf-8")
    data = ("\n".join(paragraphs(text)) + "\n").encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if digest != CORPUS_SHA256:
        raise CorpusUnavailable(f"the converted Jargon File has sha256 {digest}, expected {CORPUS_SHA256}")
    cache.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(out)
    return out
