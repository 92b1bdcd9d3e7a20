"""What an API client may read on storage: the shared inputs, and its own work only.

"A client" is an API token (farm.api.ownership: the jobs it submitted; farm.api.outputs:
the outputs it claimed). Every path a request names to be read passes `Reader`: the video
and images of POST /jobs, GET /preview and GET /faces, a models folder, the file of POST
/verify, a batch's folder or glob and every file its walk finds, and each batch item again
when it is submitted (or retried).

- the farm's own places (farm.jobs.output_places.farm_places): a job's folder `jobs/<id>/`
  is read by the token that submitted that job only; the rest (the TensorRT cache, ...) by none;
- `api/<request>/`: by the token whose request made it (the output it claimed there) only;
- `outputs/`: a token reads there the outputs it claimed, and the folders that hold them;
- anywhere else, the shared folders an operator fills (`incoming/`, `faces/`, ...): every
  token, but for the outputs another token claimed there (beside their inputs) and their
  temporaries (farm.storage.temp_name).

A path refused is answered as a missing one, whether it exists or not (422, "cannot read
... no such file"), as another client's job is answered as an unknown id: a client learns
nothing of another's files. A batch's walk leaves them out, not even listed as skipped.
A path outside storage is not this module's: Storage.confine refuses it. The farm's own
commands (`farm submit`, `farm faces`, ...) read everything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from fastapi import Request

from farm.api.outputs import claimants, claimants_in
from farm.api.ownership import job_client
from farm.config import Settings
from farm.jobs.output_places import API_OUTPUTS_DIR, API_UPLOADS_DIR, JOBS_DIR, farm_places
from farm.state.db import Database
from farm.storage import Storage
from farm.user_files import no_such_file

P = TypeVar("P", str, Path)


class Reader:
    """The paths API token `token_id` may read (the rules above). One per request: it
    remembers the folders it looked up."""

    def __init__(self, storage: Storage, settings: Settings, db: Database, token_id: int) -> None:
        self.storage = storage
        self.db = db
        self.token_id = token_id
        self._root = Path(os.path.realpath(storage.root))
        self._places = [os.path.realpath(place) for place, _what in farm_places(settings)]
        self._owned: dict[Path, bool] = {}

    def check(self, path: Path, what: str) -> None:
        """InputError, exactly as for a missing file, unless this token may read `path`."""
        if not self.keep([path]):
            raise no_such_file(what, path)

    def keep(self, paths: Sequence[P]) -> list[P]:
        """Those of `paths` (files or folders; the rules see them with symlinks resolved) that
        this token may read, in order."""
        real = [Path(os.path.realpath(p)) for p in paths]
        finals = {r: _final(r) for r in real}
        owners = claimants(self.db, {*real, *(f for f in finals.values() if f is not None)})
        kept = []
        for path, r in zip(paths, real):
            owner = owners.get(r)
            if owner is None and finals[r] is not None:
                owner = owners.get(finals[r])   # a temporary beside a claimed output: its owner's
            if self._may_read(r, owner):
                kept.append(path)
        return kept

    def _may_read(self, real: Path, owner: int | None) -> bool:
        """The rules, for real path `real`, which token `owner` claimed (None: none did)."""
        text = str(real)
        if not _inside(text, str(self._root)):
            return True   # Storage.confine's to refuse
        top = real.relative_to(self._root).parts[:2]
        if any(_inside(text, place) for place in self._places):
            return len(top) == 2 and top[0] == JOBS_DIR and self._owns(JOBS_DIR, self._root.joinpath(*top))
        if top[:1] == (API_UPLOADS_DIR,):
            return len(top) == 2 and self._owns(API_UPLOADS_DIR, self._root.joinpath(*top))
        if top[:1] == (API_OUTPUTS_DIR,):
            return owner == self.token_id or (not real.is_file() and self._owns(API_OUTPUTS_DIR, real))
        return owner in (None, self.token_id)

    def _owns(self, area: str, folder: Path) -> bool:
        """Whether `folder` of `area` is this token's: a job's folder, if it submitted the job; a
        request's folder, if it alone claimed outputs there; a folder under outputs/, if it
        holds an output of this token's."""
        if folder not in self._owned:
            if area == JOBS_DIR:
                self._owned[folder] = job_client(self.db, folder.name) == self.token_id
            elif area == API_UPLOADS_DIR:
                self._owned[folder] = claimants_in(self.db, folder) == {self.token_id}
            else:
                self._owned[folder] = self.token_id in claimants_in(self.db, folder)
        return self._owned[folder]


def reader_for(request: Request) -> Reader:
    """The Reader of the request's token."""
    ctx = request.app.state.ctx
    return Reader(ctx.storage, ctx.settings, ctx.db, request.state.token_id)


def _inside(path: str, folder: str) -> bool:
    """Whether real path `path` is real folder `folder` or inside it (as text: a walk asks this
    of every file)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _final(path: Path) -> Path | None:
    """The file a temporary beside it is written for (farm.storage.temp_name: `.NAME.<tag>.tmp`,
    and its signed copy `..NAME.<tag>.tmp.c2pa.<tag>.tmp`); None for any other name."""
    if not path.name.startswith(".") or ".tmp" not in path.name:
        return None
    head = path.name.lstrip(".").split(".tmp", 1)[0]   # NAME.<tag>
    return path.with_name(head.rsplit(".", 1)[0]) if "." in head else None
