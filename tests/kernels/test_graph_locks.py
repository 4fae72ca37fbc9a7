"""The graph's array locks: the compiled Lease (csrc/graph.pyx) and its Python spec
(cygrad.ops.PyLease) behave alike. Each test uses one class at a time, on arrays no other lease
holds (the two keep separate registries)."""

import gc

import numpy as np
import pytest

from cygrad import backend, ops

KINDS = [ops.PyLease] + ([backend.compiled_lease] if backend.compiled_lease else [])


@pytest.fixture(params=KINDS, ids=lambda k: k.__module__)
def Lease(request):
    return request.param


def test_locks_and_counts(Lease):
    a = np.zeros(3)
    first, second = Lease([a]), Lease([a, a])
    assert not a.flags.writeable
    first.release()
    assert not a.flags.writeable  # the second lease holds it (twice)
    second.release()
    assert a.flags.writeable
    a[0] = 1.0


def test_a_view_and_its_owner(Lease):
    owner = np.zeros((2, 3))
    view = owner[1]
    lease = Lease([view])
    assert not view.flags.writeable and not owner.flags.writeable
    lease.release()
    assert view.flags.writeable and owner.flags.writeable


def test_a_view_stays_read_only_while_its_owner_is_held(Lease):
    owner = np.zeros((2, 3))
    view = owner[0]
    on_owner, on_view = Lease([owner]), Lease([view])
    on_view.release()
    assert not owner.flags.writeable and not view.flags.writeable
    on_owner.release()
    assert owner.flags.writeable


def test_read_only_arrays_are_left_alone(Lease):
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    Lease([frozen]).release()
    assert not frozen.flags.writeable


def test_dropping_a_lease_unlocks(Lease):
    a = np.zeros(2)
    lease = Lease([a])
    del lease
    gc.collect()
    assert a.flags.writeable


def test_release_twice_is_harmless(Lease):
    a, b = np.zeros(2), np.zeros(2)
    lease, other = Lease([a]), Lease([a, b])
    lease.release()
    lease.release()
    assert not a.flags.writeable  # still held by the other lease
    other.release()
    assert a.flags.writeable and b.flags.writeable


def test_the_process_uses_the_compiled_lease_when_built():
    assert ops.Lease is (backend.compiled_lease or ops.PyLease)


def test_a_view_released_before_its_owner_becomes_writable_with_the_owner(Lease):
    # two parameters that are views of one buffer, their graphs released in backward's order
    owner = np.zeros((2, 3))
    first, second = owner[0], owner[1]
    a, b = Lease([first]), Lease([second])
    b.release()
    assert not second.flags.writeable  # numpy: no writable view under a read-only owner
    a.release()
    assert owner.flags.writeable and first.flags.writeable and second.flags.writeable


def test_a_waiting_view_taken_again_stays_locked_until_released(Lease):
    owner = np.zeros((2, 3))
    first, second = owner[0], owner[1]
    a, b = Lease([first]), Lease([second])
    b.release()
    again = Lease([second])  # a new graph saves the view while it waits for its owner
    a.release()
    assert not second.flags.writeable and not owner.flags.writeable  # `again` holds both
    again.release()
    assert second.flags.writeable and owner.flags.writeable and first.flags.writeable


def test_a_view_of_a_view_and_views_freed_by_the_collector(Lease):
    owner = np.zeros((4, 4))
    inner = owner[1:3]
    leaf = inner[0]
    a, b = Lease([owner]), Lease([leaf])
    del b  # freed without release (a graph dropped): its locks come back all the same
    gc.collect()
    assert not leaf.flags.writeable
    a.release()
    assert leaf.flags.writeable and owner.flags.writeable
