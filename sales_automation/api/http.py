"""What the endpoints add to Frappe's HTTP responses."""

import frappe


def after_request(response=None, request=None):
	"""Retry-After on a 503 the endpoints answer when the database stayed busy through their retries;
	Location on an asynchronous call's 202."""
	if response is None:
		return
	seconds = frappe.local.flags.get("sales_automation_retry_after")
	if seconds:
		response.headers["Retry-After"] = str(seconds)
	# an asynchronous call's 202 names where to follow its run
	location = frappe.local.flags.get("sales_automation_location")
	if location and response.status_code == 202:
		response.headers["Location"] = location
