"""schemathesis hooks of the contract test (test_contract.py), loaded by schemathesis itself
(SCHEMATHESIS_HOOKS), never by the app or the bench's test runner.

The one exclusion the contract allows: a body that is not valid JSON sent as application/json. Frappe
parses it before any app code runs (frappe.app.make_form_dict) and answers 500 on every endpoint,
/api/method/ping included; nothing the app does can answer it otherwise."""

import json

import schemathesis


@schemathesis.hook
def filter_case(ctx, case):
	if isinstance(case.body, bytes | bytearray) and "json" in (case.media_type or ""):
		try:
			json.loads(case.body)
		except ValueError:
			return False
	return True
