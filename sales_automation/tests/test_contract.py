"""docs/openapi.yaml against the live server: schemathesis (pinned in scripts/lib.sh, in a venv of its
own) generates requests from the contract, its examples included, and checks every answer: no server
error, only documented status codes and content types, bodies that conform to the response schemas,
no operation answering without authentication. Zero findings or the test fails."""

import os
import subprocess

import frappe
from frappe.utils import now_datetime

from sales_automation.background import drop_queued_job
from sales_automation.live_server import LiveServer
from sales_automation.setup.demo import DEMO_USER, SALES_ROLES, ensure_api_user, setup_demo
from sales_automation.tests.base import IntegrationTestCase

SPEC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml"))
CHECKS = (
	"not_a_server_error",
	"status_code_conformance",
	"content_type_conformance",
	"response_schema_conformance",
	"ignored_auth",
)
# The budget: generated cases per operation, besides the examples and the coverage phase's cases.
MAX_EXAMPLES = int(os.environ.get("SA_CONTRACT_EXAMPLES", 25))
SEED = int(os.environ.get("SA_CONTRACT_SEED", 20261204))
# What is not sent (contract_hooks.filter_case), and why: the only refusal Frappe answers before any
# app code runs, with a 500 on every endpoint (/api/method/ping included).
EXCLUDED = ("application/json bodies that are not valid JSON (frappe.app.make_form_dict answers 500)",)


def schemathesis_command() -> str:
	"""The pinned schemathesis (scripts/lib.sh ensure_schemathesis; site config sa_schemathesis)."""
	path = frappe.conf.get("sa_schemathesis") or os.path.expanduser(
		"~/.sales_automation/schemathesis-venv/bin/schemathesis"
	)
	if not os.path.exists(path):
		raise AssertionError(f"schemathesis not found at {path}: run make test (scripts/lib.sh installs it)")
	return path


class TestOpenAPIContract(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_demo()  # the examples' customer and items, as on the dev site (commits)
		ensure_example_rule()
		cls.api_key, cls.api_secret = ensure_api_user(DEMO_USER, [*SALES_ROLES, "System Manager"])
		frappe.db.commit()
		cls.server = cls.enterClassContext(LiveServer(workers=2, threads=4))

	def test_the_server_answers_as_docs_openapi_yaml_says(self):
		output_dir = os.path.join(frappe.conf.get("sa_test_output") or "/tmp", "contract")
		os.makedirs(output_dir, exist_ok=True)
		command = [
			schemathesis_command(),
			"run",
			SPEC,
			"--url",
			self.server.url,
			"--header",
			f"Authorization: token {self.api_key}:{self.api_secret}",
			"--header",
			f"X-Frappe-Site-Name: {self.server.site}",
			"--checks",
			",".join(CHECKS),
			"--phases",
			"examples,coverage,fuzzing",
			"--max-examples",
			str(MAX_EXAMPLES),
			"--seed",
			str(SEED),
			"--workers",
			"2",
			"--request-timeout",
			"120",
			"--suppress-health-check",
			"all",
			"--report",
			"junit",
			"--report-dir",
			output_dir,
			"--no-color",
		]
		print(
			f"\ncontract test: schemathesis, seed {SEED}, {MAX_EXAMPLES} generated cases per operation "
			f"(SA_CONTRACT_SEED / SA_CONTRACT_EXAMPLES), checks {', '.join(CHECKS)}, excluded: "
			f"{', '.join(EXCLUDED) or 'nothing'}"
		)
		hooks = os.path.dirname(os.path.abspath(__file__))
		environment = {**os.environ, "SCHEMATHESIS_HOOKS": "contract_hooks", "PYTHONPATH": hooks}
		started = now_datetime()
		try:
			result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=environment)
		finally:
			drop_queued_runs(since=started)
		with open(os.path.join(output_dir, "schemathesis.log"), "w") as log:
			log.write(result.stdout + result.stderr)
		summary = [line for line in result.stdout.splitlines() if line.strip()][-12:]
		print("\n".join(summary))
		self.assertEqual(
			result.returncode,
			0,
			f"schemathesis found failures (full log in {output_dir}/schemathesis.log):\n"
			+ result.stdout[-12000:]
			+ result.stderr[-2000:],
		)


def drop_queued_runs(since):
	"""The background runs the fuzzer queued (run_bulk with filters that take every order): their jobs
	dropped and the runs cancelled, so that no later test's worker works them off."""
	frappe.db.rollback()  # what the server committed
	runs = frappe.get_all(
		"Sales Automation Run",
		filters={"status": "Queued", "creation": [">=", since]},
		fields=["name", "sales_order"],
	)
	for run in runs:
		drop_queued_job(run.sales_order)
		frappe.db.set_value("Sales Automation Run", run.name, "status", "Cancelled")
	frappe.db.commit()


EXAMPLE_RULE = "Deliver and bill Demo Customer"


def ensure_example_rule():
	"""The rule docs/openapi.yaml's simulator examples name, so they answer 200 with orders (a disabled
	rule: it never takes the orders other tests submit)."""
	if not frappe.db.exists("Sales Automation Rule", EXAMPLE_RULE):
		frappe.get_doc(
			{
				"doctype": "Sales Automation Rule",
				"rule_name": EXAMPLE_RULE,
				"enabled": 0,
				"order_customer": "Demo Customer",
				"create_payment_entry": 0,
			}
		).insert()
	frappe.db.commit()
