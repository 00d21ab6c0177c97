"""`banditrec export` and `banditrec import`: a store's state as one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from service.command_context import (
    STORE_HINT,
    command_settings,
    no_data_folder,
    redis_for_command,
    store_description,
)
from service.embedded import EmbeddedRedisError
from service.logs import log_event
from service.progress import Progress

if TYPE_CHECKING:
    from service.config import Settings
    from service.state import StateDocument

T = TypeVar("T")


class EmptyStore(RuntimeError):
    """An export found no items, counts or clustering under the prefix."""


_IMPORT_ATTEMPTS = 3
_SECTION_NAMES = {"retired": "retired items", "dedupe": "dedupe markers"}


def export_state(args: argparse.Namespace) -> int:
    """Write the store's state as one JSON document; return the exit code."""
    from service.store import StateChanged, StoreUnavailable

    settings = command_settings("export")
    if settings is None:
        return 2
    empty = (
        f"banditrec export: nothing was exported: {{}}. {STORE_HINT}; --allow-empty "
        "exports an empty store anyway"
    )
    if no_data_folder(settings) and not args.allow_empty:
        missing = f"{settings.data_dir.resolve()} does not exist ({store_description(settings)})"
        print(empty.format(missing), file=sys.stderr)
        return 1
    print(f"banditrec export: reading {store_description(settings)}", file=sys.stderr)
    try:
        with redis_for_command(settings) as url, _output(args.output) as out:
            summary = asyncio.run(
                export_document(url, settings, out, users=args.users, allow_empty=args.allow_empty)
            )
    except EmptyStore:
        held = f"{store_description(settings)} holds no items, counts or clustering"
        print(empty.format(held), file=sys.stderr)
        return 1
    except (EmbeddedRedisError, StoreUnavailable, StateChanged) as exc:
        print(f"banditrec export: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`banditrec export | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"banditrec export: {summary} of prefix {settings.key_prefix!r}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """Yield stdout, or a file that appears under `path` only once it is complete."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = Path(f"{path}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


async def export_document(
    url: str, settings: Settings, out: TextIO, *, users: bool, allow_empty: bool = True
) -> str:
    """Stream the state under settings.key_prefix to `out`; return a summary of what it holds.

    Raises EmptyStore, before writing anything, if the store holds nothing and not `allow_empty`.
    """
    from service import state
    from service.store import Store
    from service.store import state as store_state

    store = Store(url, **settings.store_options())
    try:
        snapshot = await store_state.read_state(store, settings.discount.half_life_s)
        if not allow_empty and not state.holds_state(snapshot):
            raise EmptyStore(f"nothing under key prefix {settings.key_prefix!r}")
        out.write(state.open_document(snapshot, state.settings_fields(settings), _version()))
        markers = store_state.dedupe_markers(store, snapshot.shard_ms, settings.dedupe_retention_s)
        sections: list[tuple[str, AsyncIterable[list[str]]]] = [
            ("items", _once(state.item_entries(snapshot))),
            ("retired", _once(state.retired_entries(snapshot))),
            ("arms", _once(state.arm_entries(snapshot))),
            ("dedupe", _rendered(markers, state.dedupe_entries)),
        ]
        if users:
            sections.append(
                ("users", _rendered(store_state.stored_users(store), state.user_entries))
            )
        counts = []
        with Progress("banditrec export: writing", None, "entries") as progress:
            for n, (name, entries) in enumerate(sections):
                out.write(",\n" if n else "")
                n_entries = await _write_array(out, name, entries, progress)
                counts.append(f"{n_entries} {_SECTION_NAMES.get(name, name)}")
        out.write("\n}\n")
    finally:
        await store.close()
    return ", ".join(counts)


async def _once(entries: list[str]) -> AsyncIterator[list[str]]:
    yield entries


async def _rendered(
    batches: AsyncIterable[list[T]], render: Callable[[list[T]], list[str]]
) -> AsyncIterator[list[str]]:
    async for batch in batches:
        yield render(batch)


async def _write_array(
    out: TextIO, name: str, batches: AsyncIterable[list[str]], progress: Progress
) -> int:
    """Write `"name": [...]` one entry per line; return how many entries it has."""
    out.write(f'"{name}": [')
    n = 0
    async for batch in batches:
        for entry in batch:
            out.write(("\n" if n == 0 else ",\n") + entry)
            n += 1
        progress.advance(len(batch))
    out.write("\n]" if n else "]")
    return n


def _version() -> str:
    try:
        return importlib.metadata.version("banditrec")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def import_state(args: argparse.Namespace) -> int:
    """Validate a state file, then write it in one transaction; return the exit code."""
    from service import state

    settings = command_settings("import")
    if settings is None:
        return 2
    source = "stdin" if args.file == "-" else args.file
    phase = _phase_printer("banditrec import")
    try:
        text = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"banditrec import: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return 2
    phase(f"read {len(text) / 1e6:.1f} MB from {source}; validating")
    try:
        document = state.parse_document(text)
    except state.InvalidState as exc:
        print(
            f"banditrec import: {source} is not a valid state file; nothing was written:",
            file=sys.stderr,
        )
        for path, message in exc.errors:
            print(f"  {path}: {message}" if path else f"  {message}", file=sys.stderr)
        return 2
    for note in state.settings_differences(document, settings):
        print(f"banditrec import: note: {note}", file=sys.stderr)
    phase(f"validated {state.describe(document)}; writing in one transaction")
    print(f"banditrec import: writing to {store_description(settings)}", file=sys.stderr)
    try:
        with redis_for_command(settings) as url:
            return asyncio.run(import_document(url, settings, document, replace=args.replace))
    except EmbeddedRedisError as exc:
        print(f"banditrec import: {exc}", file=sys.stderr)
        return 1


async def import_document(
    url: str, settings: Settings, document: StateDocument, *, replace: bool
) -> int:
    """Write a validated document under settings.key_prefix; return the exit code."""
    from service import state
    from service.store import StateChanged, StateNotEmpty, Store, StoreUnavailable, restore

    prefix = settings.key_prefix
    store = Store(url, **settings.store_options())
    try:
        for _ in range(_IMPORT_ATTEMPTS):
            current = await store.versions()
            plan = state.plan_import(document, current)
            with contextlib.suppress(StateChanged):
                await restore.write_state(store, plan, current.clusters, replace=replace)
                log_event(
                    "state_imported",
                    prefix=prefix,
                    replace=replace,
                    items=len(document.items),
                    arms=len(document.arms),
                    dedupe_markers=len(document.dedupe),
                    users=len(document.users or ()),
                )
                print(
                    f"banditrec import: imported {state.describe(document)} into prefix {prefix!r}"
                )
                return 0
        print(
            "banditrec import: the store kept changing while importing (is the service still "
            "taking writes?); nothing was written",
            file=sys.stderr,
        )
    except StateNotEmpty as exc:
        print(
            f"banditrec import: {exc} under prefix {prefix!r}; nothing was written. "
            "--replace deletes every key under the prefix, then imports",
            file=sys.stderr,
        )
    except StoreUnavailable as exc:
        # A timeout can hit after Redis ran the transaction: it is then applied in full.
        print(
            f"banditrec import: {exc}; the import is one transaction, so it was applied in "
            "full or not at all: check with `banditrec export` before importing again",
            file=sys.stderr,
        )
    finally:
        await store.close()
    return 1


def _phase_printer(label: str) -> Callable[[str], None]:
    """Return a function printing a step of a long command with its time, on a terminal only."""
    started = time.monotonic()

    def phase(step: str) -> None:
        if sys.stderr.isatty():
            print(f"{label}: {step} ({time.monotonic() - started:.1f} s)", file=sys.stderr)

    return phase
