"""How long a worker takes to pick up a new KB revision, and what answering costs meanwhile.

    .venv/bin/python bench/kb_reload.py [--entries 1000] [--db sqlite|postgres] [--rounds 3]

Builds a live KB of `--entries` entries in a throw-away database (the sample entries, repeated with their
questions reworded so that every question is new text for the analyser), then for each round saves one edit
as a revision and times what a worker does at its next poll (`LiveKnowledge.refresh`: the revision query, the
database read, the validation, the matcher's index and the engine's view). Meanwhile a second thread answers
questions without pause: their latencies during the rebuild are printed beside those of an idle worker (the
rebuild runs in a thread; answering goes on, sharing the interpreter).
PostgreSQL: the local server on 127.0.0.1:5432 (trust auth), a database created and dropped by the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from bot.live_kb import LiveKnowledge, checked, load_live, seed_items  # noqa: E402
from bot.settings import Settings  # noqa: E402
from handlers.engine import Engine  # noqa: E402
from knowledge.loader import DEFAULT_KB_PATH  # noqa: E402
from storage import kb as kbdb  # noqa: E402
from storage.db import make_engine, session_factory, transaction  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests import pg  # noqa: E402

# Words put in front of the sample questions to make new text of the same kind (places and situations).
PREFIXES = (
    "",
    "函館市で",
    "湯川に住んでいて",
    "五稜郭の近くで",
    "引っ越してきたばかりで",
    "共働きで",
    "双子がいて",
    "上の子が小学生で",
    "夫が単身赴任で",
    "外国籍で",
)
QUESTIONS = (
    "児童手当はいつ振り込まれますか",
    "保育園の申し込み方法を教えてください",
    "夜に子どもが熱を出した",
    "一時預かりはどこでできますか",
    "予防接種の予約をしたい",
    "ワクチン",
)


def synthetic(entries: int) -> tuple[list[kbdb.Item], list[kbdb.Item]]:
    base, contacts = seed_items(DEFAULT_KB_PATH)
    out: list[kbdb.Item] = []
    n = 0
    while len(out) < entries:
        prefix = PREFIXES[n % len(PREFIXES)]
        for item in base:
            if len(out) >= entries:
                break
            data: dict[str, Any] = dict(item.data)
            if n:
                data["id"] = f"{item.item_id}-v{n}"
                data["questions"] = {k: [prefix + q for q in qs] for k, qs in data["questions"].items()}
                data["related"] = []
            out.append(kbdb.Item(kbdb.ENTRY, data["id"], data, item.origin))
        n += 1
    return out, contacts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def answering(engine: Engine, stop: threading.Event, latencies: list[float]) -> None:
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        engine.classify(QUESTIONS[i % len(QUESTIONS)] + ("" if i % 2 else "？"))
        latencies.append((time.perf_counter() - t) * 1000)
        i += 1


def run(url: str, entries: int, rounds: int) -> None:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    db = make_engine(url)
    upgrade(db)
    sessions = session_factory(db)
    items, contacts = synthetic(entries)
    t = time.perf_counter()
    with transaction(sessions) as s:
        kbdb.seed(s, entries=items, contacts=contacts)
    print(f"seeded {len(items)} entries and {len(contacts)} contacts in {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    loaded = load_live(sessions, DEFAULT_KB_PATH)
    kb = checked(loaded)
    live = LiveKnowledge(
        sessions,
        path=DEFAULT_KB_PATH,
        config=settings.match.config(),
        revision=loaded.revision,
        kb=kb,
    )
    engine = Engine(kb, live.matcher, sessions, settings.engine_config())
    live.on_swap(lambda kb, m: (lambda view: lambda: engine.use(view))(engine.prepare(kb, m)))
    print(
        f"first load (cold analyser): {time.perf_counter() - t:.2f} s, "
        f"{sum(len(e.question_list()) for e in kb.entries.values())} example questions"
    )

    idle: list[float] = []
    stop = threading.Event()
    worker = threading.Thread(target=answering, args=(engine, stop, idle))
    worker.start()
    time.sleep(2.0)
    stop.set()
    worker.join()

    alone: list[float] = []
    for r in range(rounds):  # a worker with nothing else to do at that moment
        first = items[-1 - r]
        data = {**first.data, "answer": {**first.data["answer"], "ja": first.data["answer"]["ja"] + f"（確認{r}）"}}
        with transaction(sessions) as s:
            kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, first.item_id, data)], staff_name="bench")
        t = time.perf_counter()
        assert live.refresh()
        alone.append(time.perf_counter() - t)

    rebuilds: list[float] = []
    busy: list[float] = []
    poll: list[float] = []
    for r in range(rounds):
        first = items[r]
        data = {**first.data, "answer": {**first.data["answer"], "ja": first.data["answer"]["ja"] + f"（改定{r}）"}}
        with transaction(sessions) as s:
            kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, first.item_id, data)], staff_name="bench")
        during: list[float] = []
        stop = threading.Event()
        worker = threading.Thread(target=answering, args=(engine, stop, during))
        worker.start()
        t = time.perf_counter()
        assert live.refresh()
        rebuilds.append(time.perf_counter() - t)
        stop.set()
        worker.join()
        busy += during
        assert engine.kb.entries[first.item_id].answer["ja"].endswith(f"（改定{r}）")
        t = time.perf_counter()
        assert not live.refresh()  # nothing new: the poll's one query
        poll.append((time.perf_counter() - t) * 1000)
    db.dispose()

    print(
        f"rebuild of {len(items)} entries at a new revision (read, validate, index, swap), {rounds} rounds, "
        f"nothing else running: median {statistics.median(alone):.2f} s, max {max(alone):.2f} s"
    )
    print(
        f"the same while another thread answers without pause: "
        f"median {statistics.median(rebuilds):.2f} s, max {max(rebuilds):.2f} s"
    )
    print(f"poll without a change: median {statistics.median(poll):.1f} ms")
    print(
        f"answering while idle:       {len(idle)} answers, p50 {pct(idle, 0.5):.1f} ms, p95 {pct(idle, 0.95):.1f} ms, "
        f"max {max(idle):.1f} ms"
    )
    if busy:
        print(
            f"answering during a rebuild: {len(busy)} answers, p50 {pct(busy, 0.5):.1f} ms, "
            f"p95 {pct(busy, 0.95):.1f} ms, max {max(busy):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.db == "postgres":
        name = pg.create_database()
        try:
            run(pg.url_for(name), args.entries, args.rounds)
        finally:
            pg.drop_database(name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.entries, args.rounds)


if __name__ == "__main__":
    main()
