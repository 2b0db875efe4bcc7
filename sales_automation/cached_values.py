"""Frappe's Redis-cached values a cycle reads (DocType metadata, table columns, the per-DocType maps of
hooks, notifications and naming rules, Singles' cached documents), fetched in one round trip as a
request or job starts its cycle instead of one round trip each.

Frappe keeps what it reads from Redis in `frappe.local.cache` for the rest of the request
(RedisWrapper.get_value and .hget), and every request and background job starts with it empty (as
does `frappe.set_user`); a cycle's documents then read about 180 values one round trip at a time.
`remember()` notes, when a cycle ends, which values it read: the keys of `frappe.local.cache` that
Redis holds as a string, and the fields read of those it holds as a hash. `prefetch()`, as the next
cycle in this process starts, reads the ones the last two cycles both read and this request has not
read yet, with one pipeline, and puts them where Frappe's own reads would have put them.

A document's own cached copy is never remembered: which customer, items and accounts a cycle reads
differ from order to order. A value fetched this way sits in `frappe.local.cache` whether or not the
cycle then reads it, so every RENEW_EVERY cycles the next one runs without the fetch and what it reads
alone is remembered: a value the cycles no longer read is dropped.

Each value is Redis's own at that moment, as Frappe's first read would have found it; Frappe drops it
from `frappe.local.cache` on a change as it drops its own (delete_value, hdel, hset, set_value), and a
value Redis does not hold is left for Frappe to make."""

import pickle
from itertools import islice
from typing import NamedTuple

import redis

import frappe

# How many values (string keys and hash fields) this process remembers per site, at most.
MAX_REMEMBERED = 1000
# Every this many cycles, the next cycle in the process runs without the fetch (see above).
RENEW_EVERY = 100


class Remembered(NamedTuple):
	"""Per site: sets of (key, hash field) pairs, the field None for a string key."""

	last: frozenset  # what the last cycle read
	recurring: frozenset  # what the last two cycles both read: what prefetch() fetches
	cycles: int  # how many cycles this process has remembered


_REMEMBERED: dict[str, Remembered] = {}
# {site: {key: b"string" | b"hash" | ...}}: Redis's type of the keys seen, so each is asked once
_KINDS: dict[str, dict[bytes, bytes]] = {}


def prefetch() -> None:
	"""Read, in one round trip, the values the last two cycles both read that this request lacks."""
	remembered = _REMEMBERED.get(frappe.local.site)
	if not remembered:
		return
	local_cache = frappe.local.cache
	hashes: dict[bytes, list[str]] = {}
	strings: list[bytes] = []
	for key, field in remembered.recurring:
		held = local_cache.get(key)
		if field is None:
			if key not in local_cache:
				strings.append(key)
		elif not (isinstance(held, dict) and field in held):
			hashes.setdefault(key, []).append(field)
	if not (hashes or strings):
		return
	pipeline = frappe.cache.pipeline(transaction=False)
	for key, fields in hashes.items():
		pipeline.hmget(key, fields)
	if strings:
		pipeline.mget(strings)
	try:
		answers = pipeline.execute()
	except redis.exceptions.ConnectionError:
		return  # Frappe reads each value itself, as it does without Redis
	for (key, fields), values in zip(hashes.items(), answers, strict=False):
		held = local_cache.get(key)
		if not isinstance(held, dict):
			held = local_cache[key] = {}
		for field, value in zip(fields, values, strict=True):
			if value is not None:
				held[field] = pickle.loads(value)
	if strings:
		for key, value in zip(strings, answers[-1], strict=True):
			if value is not None:
				local_cache[key] = pickle.loads(value)


def remember() -> None:
	"""Note the Redis values this request has read (its `frappe.local.cache`), for prefetch()."""
	local_cache = frappe.local.cache
	kinds = kinds_of([key for key in local_cache if isinstance(key, bytes) and not one_document(key)])
	read = set()
	for key, value in list(local_cache.items()):
		kind = kinds.get(key)
		if kind == b"string" and value is not None:
			read.add((key, None))
		elif kind == b"hash" and isinstance(value, dict):
			read.update((key, field) for field in value if isinstance(field, str))
	read = frozenset(islice(read, MAX_REMEMBERED))
	known = _REMEMBERED.get(frappe.local.site) or Remembered(frozenset(), frozenset(), 0)
	cycles = known.cycles + 1
	# renewing: the next cycle fetches nothing, so what it reads is what it needs
	recurring = frozenset() if cycles % RENEW_EVERY == 0 else read & known.last
	_REMEMBERED[frappe.local.site] = Remembered(read, recurring, cycles)


def one_document(key: bytes) -> bool:
	"""A document's own cached copy (`document_cache::<doctype>::<name>`), a Single's excepted."""
	_site, _separator, name = key.partition(b"|")
	if not name.startswith(b"document_cache::"):
		return False
	doctype, _separator, document = name.removeprefix(b"document_cache::").partition(b"::")
	return doctype != document


def kinds_of(keys: list[bytes]) -> dict[bytes, bytes]:
	"""Redis's type of each key, asked in one round trip for the keys not seen before."""
	kinds = _KINDS.setdefault(frappe.local.site, {})
	unknown = [key for key in keys if key not in kinds]
	if not unknown:
		return kinds
	pipeline = frappe.cache.pipeline(transaction=False)
	for key in unknown:
		pipeline.type(key)
	try:
		answers = pipeline.execute()
	except redis.exceptions.ConnectionError:
		return kinds
	if len(kinds) > 4 * MAX_REMEMBERED:
		kinds.clear()  # a bound for a long-lived process; a key still read is asked again, once
	# a key Redis does not hold now is asked again when it is seen again
	kinds.update((key, kind) for key, kind in zip(unknown, answers, strict=True) if kind != b"none")
	return kinds
