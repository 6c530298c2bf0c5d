"""Placement over a capacity table: requests fit beside every holder (foreign ones too), first come
first served, backfill that never delays the head, slots as a cap, GPUs by id, reasons a person reads."""

from __future__ import annotations

from fbtui.pipeline.placement import GiB, Holder, Host, Request, Waiting, place

ONE = Request(1, 1 * GiB)
TWO = Request(2, 1 * GiB)


def host(cpus: float = 2, memory: int = 8 * GiB, **kw) -> dict[str, Host]:  # type: ignore[no-untyped-def]
    return {"local": Host("local", cpus, memory, **kw)}


def test_two_one_cpu_stages_share_a_two_cpu_host_and_a_third_waits_with_its_reason() -> None:
    d = place([Waiting(1, "train", ONE, ["local"]), Waiting(2, "train", ONE, ["local"]),
               Waiting(3, "train", ONE, ["local"])], host())
    assert [x.host for x in d] == ["local", "local", None]
    assert d[2].reason == "waiting for 1 CPU on local (2 of 2 in use: #1 train, #2 train)"


def test_a_foreign_container_counts_and_is_named() -> None:
    hosts = host(holders=[Holder(7, "train", ONE, foreign=True, owner="alice's checkout 1a2b3c4d")])
    d = place([Waiting(1, "train", TWO, ["local"])], hosts)
    assert d[0].host is None
    assert d[0].reason == "waiting for 2 CPUs on local (1 of 2 in use: #7 train of alice's checkout 1a2b3c4d)"


def test_first_come_first_served_over_ten_runs() -> None:
    queue = [Waiting(i, "train", ONE, ["local"]) for i in range(1, 11)]
    started = [x.waiting.run for x in place(queue, host()) if x.host]
    assert started == [1, 2]


def test_backfill_never_delays_the_head() -> None:
    # 1 CPU in use: the head wants 2 and waits; a 1-CPU stage behind it would take the CPU the
    # head needs next, so it waits too, saying why.
    hosts = host(holders=[Holder(9, "train", ONE)])
    d = place([Waiting(1, "train", TWO, ["local"]), Waiting(2, "prepare", ONE, ["local"])], hosts)
    assert [x.host for x in d] == [None, None]
    assert d[1].reason == "waiting for its turn on local: #1 train waits ahead of it"


def test_backfill_where_the_head_is_not_held_up() -> None:
    # The head waits for a GPU; a CPU-only stage behind it may use the idle CPUs.
    hosts = host(cpus=4, gpu_ids=(0,), holders=[Holder(9, "train", Request(1, 0, 1), (0,))])
    d = place([Waiting(1, "train", Request(1, 0, 1), ["local"]), Waiting(2, "prepare", ONE, ["local"])], hosts)
    assert [x.host for x in d] == [None, "local"]
    assert d[0].reason == "waiting for 1 free GPU on local (0 free)"


def test_slots_cap_the_number_of_stages() -> None:
    d = place([Waiting(1, "a", Request(0.5, 0), ["local"]), Waiting(2, "a", Request(0.5, 0), ["local"])],
              host(slots=1))
    assert [x.host for x in d] == ["local", None] and d[1].reason.startswith("waiting for a slot on local (1 of 1")


def test_memory_is_counted() -> None:
    d = place([Waiting(1, "a", Request(1, 6 * GiB), ["local"]), Waiting(2, "a", Request(1, 4 * GiB), ["local"])],
              host())
    assert d[1].host is None and "4 GiB of memory on local (6.0 of 8.0 GiB in use: #1 a)" in d[1].reason


def test_gpus_are_picked_from_the_free_ids() -> None:
    hosts = host(cpus=8, gpu_ids=(0, 1, 2), holders=[Holder(9, "train", Request(1, 0, 1), (1,))])
    d = place([Waiting(1, "t", Request(1, 0, 1), ["local"]), Waiting(2, "t", Request(1, 0, 1), ["local"]),
               Waiting(3, "t", Request(1, 0, 1), ["local"])], hosts)
    assert [x.gpus for x in d] == [(0,), (2,), ()] and d[2].host is None


def test_a_second_host_takes_what_the_first_cannot() -> None:
    hosts = {"local": Host("local", 2, 8 * GiB, holders=[Holder(9, "t", TWO)]), "remote": Host("remote", 2, 8 * GiB)}
    d = place([Waiting(1, "t", ONE, ["local", "remote"])], hosts)
    assert d[0].host == "remote"


def test_a_request_that_never_fits_says_so() -> None:
    d = place([Waiting(1, "t", Request(4, 0), ["local"])], host())
    assert d[0].host is None and d[0].reason == "cannot run on any of its hosts: 4 CPUs asked, local has 2"
    assert host()["local"].never_fits(Request(1, 0, (3,))) == "GPU 3 asked, local has no GPUs"


def test_a_gpu_host_without_an_id_list_lets_the_engine_allocate() -> None:
    hosts = {"local": Host("local", 4, 8 * GiB, gpu_ids=None)}
    d = place([Waiting(1, "t", Request(1, 0, 2), ["local"])], hosts)
    assert d[0].host == "local" and d[0].gpus == ()
