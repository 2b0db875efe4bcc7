"""What the endpoints add to Frappe's HTTP responses."""

import json

import frappe
from frappe.utils import strip_html

API_PREFIX = "/api/method/sales_automation."


def after_request(response=None, request=None):
	"""Retry-After on a 503 the endpoints answer when the database stayed busy through their retries;
	Location on an asynchronous call's 202; the `error` object on a refusal Frappe answers before the
	app's code runs (a Guest, a method not allowed)."""
	if response is None:
		return
	seconds = frappe.local.flags.get("sales_automation_retry_after")
	if seconds:
		response.headers["Retry-After"] = str(seconds)
	# an asynchronous call's 202 names where to follow its run
	location = frappe.local.flags.get("sales_automation_location")
	if location and response.status_code == 202:
		response.headers["Location"] = location
	if 400 <= response.status_code < 500 and request is not None and request.path.startswith(API_PREFIX):
		add_error_object(response)


def add_error_object(response):
	"""The documented `error` object on a 4xx whose body lacks it (what Frappe said, as the app would),
	and no traceback in it."""
	if response.mimetype != "application/json":
		return
	try:
		body = json.loads(response.get_data(as_text=True))
	except ValueError:
		return
	if not isinstance(body, dict):
		return
	# a refusal, not a crash: no traceback of the server's code paths in it
	had_traceback = bool(body.pop("exc", None)) | bool(body.pop("exception", None))
	if "error" in body:
		if had_traceback:
			response.set_data(json.dumps(body))
		return
	if response.status_code == 417:
		# Frappe's refusal of a body it cannot take as arguments (a JSON value that is not an object)
		response.status_code = 422
	body["error"] = {
		"type": body.get("exc_type") or "Error",
		"message": server_message(body) or body.get("exc_type") or str(response.status_code),
		"step": None,
		"field": None,
		"cause": None,
	}
	response.set_data(json.dumps(body))


def server_message(body: dict) -> str | None:
	try:
		messages = json.loads(body.get("_server_messages") or "[]")
		first = json.loads(messages[0]) if messages else None
	except (ValueError, TypeError, IndexError):
		return None
	if isinstance(first, dict):
		return strip_html(str(first.get("message") or "")).strip() or None
	return strip_html(str(first or "")).strip() or None
