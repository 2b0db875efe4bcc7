"""What the endpoints add to Frappe's HTTP responses."""

import frappe


def after_request(response=None, request=None):
	"""Retry-After on a 503 the endpoints answer when the database stayed busy through their retries."""
	seconds = frappe.local.flags.get("sales_automation_retry_after")
	if seconds and response is not None:
		response.headers["Retry-After"] = str(seconds)
