"""Idempotency keys, scoped per user: the same key and request replays the stored answer, the same key
with another request is refused (422), and a key whose first call is still running answers 409."""

import hashlib
import json

import frappe
from frappe import _
from frappe.utils import add_to_date, now_datetime

from sales_automation.exceptions import IdempotencyKeyReusedError, RequestInProgressError

DOCTYPE = "Sales Automation Request"
# a call that died without answering must not hold its key for ever
ABANDONED_AFTER_MINUTES = 15


def request_id(key: str) -> str:
	return hashlib.sha256(f"{frappe.session.user}\x00{key}".encode()).hexdigest()


def fingerprint(endpoint: str, request: dict) -> str:
	return hashlib.sha256(json.dumps([endpoint, request], sort_keys=True, default=str).encode()).hexdigest()


def claim(endpoint: str, key: str, request: dict) -> tuple[str | None, dict | None]:
	"""Claim the key for this call (committed at once, so concurrent calls see it).

	Returns (claim name, None) for a new call, or (None, stored answer) for a replay."""
	name = request_id(key)
	request_hash = fingerprint(endpoint, request)
	record = frappe.get_doc(
		{
			"doctype": DOCTYPE,
			"request_id": name,
			"user": frappe.session.user,
			"idempotency_key": key,
			"endpoint": endpoint,
			"request_hash": request_hash,
			"status": "In Progress",
		}
	)
	try:
		# bookkeeping of the app itself; the caller's rights apply to the documents of the call
		record.insert(ignore_permissions=True)
		frappe.db.commit()
		return name, None
	except frappe.DuplicateEntryError:
		frappe.local.message_log = []
		frappe.db.rollback()
	# a locking read sees the latest committed state, whatever this transaction saw before
	stored = frappe.db.get_value(
		DOCTYPE,
		name,
		["endpoint", "request_hash", "status", "response", "modified"],
		as_dict=True,
		for_update=True,
	)
	if not stored:  # released by a failed call meanwhile: try once more
		frappe.db.rollback()
		return claim(endpoint, key, request)
	if stored.endpoint != endpoint or stored.request_hash != request_hash:
		frappe.db.rollback()
		frappe.throw(
			_("Idempotency key {0} was already used with a different request").format(key),
			IdempotencyKeyReusedError,
			title=_("Idempotency Key Reused"),
		)
	if stored.status == "In Progress":
		if stored.modified < add_to_date(now_datetime(), minutes=-ABANDONED_AFTER_MINUTES):
			frappe.db.set_value(DOCTYPE, name, "status", "In Progress", update_modified=True)
			frappe.db.commit()  # nosemgrep - the taken-over key is visible to concurrent calls at once
			return name, None
		frappe.db.rollback()
		frappe.throw(
			_("A request with idempotency key {0} is still running; retry later").format(key),
			RequestInProgressError,
			title=_("Request In Progress"),
		)
	frappe.db.rollback()
	return None, json.loads(stored.response)


def complete(name: str, response: dict):
	frappe.db.set_value(
		DOCTYPE,
		name,
		{
			"status": "Completed",
			"response": json.dumps(response, default=str),
			"run": response.get("run"),
			"sales_order": response.get("sales_order"),
		},
	)


def release(name: str):
	"""A failed call keeps nothing, its key included: the caller may retry with the same key."""
	frappe.db.delete(DOCTYPE, {"name": name})
	frappe.db.commit()  # nosemgrep - the key is free for the caller's retry at once
