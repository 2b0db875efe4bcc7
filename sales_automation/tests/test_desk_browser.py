"""The desk in a real browser: headless Debian chromium driven by playwright-core (browser_tests/desk.mjs)
against this site served by gunicorn with its built assets, and an RQ worker for background runs.

Each test prepares its data here, lets the browser do what an admin does, then asserts on the database.
Screenshots go to <test output>/browser (make test: $SA_TEST_OUTPUT, by default test-output/)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import frappe
from frappe.utils.change_log import get_versions
from frappe.utils.password import update_password

from sales_automation import engine
from sales_automation.live_server import LiveServer
from sales_automation.setup.demo import receive_stock
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	documents_of,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	test_env,
)

REPO = Path(__file__).resolve().parents[2]
BROWSER_TESTS = REPO / "browser_tests"
CHROMIUM = os.environ.get("SA_CHROMIUM", "/usr/bin/chromium")
DESK_USER = "_sa_desk_admin@example.com"
DESK_PASSWORD = "Desk-Tests-4711!"
DESK_ROLES = [
	"System Manager",
	"Sales Manager",
	"Sales User",
	"Stock User",
	"Accounts User",
	"Accounts Manager",
]


def screenshot_dir() -> Path:
	"""make test names its output directory in the site config; test-output/ in the checkout otherwise."""
	return Path(frappe.conf.get("sa_test_output") or REPO / "test-output") / "browser"


def ensure_desk_user():
	if not frappe.db.exists("User", DESK_USER):
		frappe.get_doc(
			{
				"doctype": "User",
				"email": DESK_USER,
				"first_name": "Desk Admin",
				"send_welcome_email": 0,
				"user_type": "System User",
			}
		).insert()
	frappe.get_doc("User", DESK_USER).add_roles(*DESK_ROLES)
	update_password(DESK_USER, DESK_PASSWORD)
	# no "updated to a new version" dialog over the page on first login
	frappe.db.set_value("User", DESK_USER, "last_known_versions", json.dumps(get_versions()))


class TestDeskInBrowser(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		missing = [
			what
			for what, present in (
				(CHROMIUM, os.access(CHROMIUM, os.X_OK)),
				("node", shutil.which("node")),
				(
					str(BROWSER_TESTS / "node_modules/playwright-core"),
					(BROWSER_TESTS / "node_modules/playwright-core").is_dir(),
				),
			)
			if not present
		]
		if missing:
			raise RuntimeError(f"browser tests need {', '.join(missing)}: run them through `make test`")
		ensure_desk_user()
		frappe.db.commit()
		cls.server = LiveServer(statics=True).__enter__()
		worker_log = Path(cls.server.log_path).with_name(f"browser-worker-{cls.server.port}.log")
		cls.worker_log = open(worker_log, "w")
		cls.worker = subprocess.Popen(
			[
				sys.executable,
				"-m",
				"frappe.utils.bench_helper",
				"frappe",
				"worker",
				"--queue",
				"default,short",
			],
			cwd=os.path.abspath(frappe.local.sites_path),
			stdout=cls.worker_log,
			stderr=subprocess.STDOUT,
		)

	@classmethod
	def tearDownClass(cls):
		cls.worker.terminate()
		try:
			cls.worker.wait(timeout=30)
		except subprocess.TimeoutExpired:
			cls.worker.kill()
		cls.worker_log.close()
		cls.server.__exit__(None, None, None)
		super().tearDownClass()

	def browse(self, scenario: str, **args) -> dict:
		"""Run one scenario of browser_tests/desk.mjs; its JSON answer, after its screenshot exists."""
		frappe.db.commit()  # the server and the worker see only committed data
		shots = screenshot_dir()
		result = subprocess.run(
			["node", str(BROWSER_TESTS / "desk.mjs"), scenario],
			env={
				**os.environ,
				"SA_URL": self.server.url,
				"SA_SITE": self.server.site,
				"SA_USER": DESK_USER,
				"SA_PASSWORD": DESK_PASSWORD,
				"SA_SCREENSHOTS": str(shots),
				"SA_ARGS": json.dumps(args),
				"SA_CHROMIUM": CHROMIUM,
			},
			capture_output=True,
			text=True,
			timeout=300,
		)
		lines = result.stdout.strip().splitlines()
		answer = json.loads(lines[-1]) if lines else {}
		self.assertEqual(
			result.returncode, 0, f"{scenario}: {answer.get('error') or result.stderr[-3000:]} (see {shots})"
		)
		self.assertTrue((shots / f"{scenario}.png").is_file())
		frappe.db.rollback()  # read what the browser's requests committed
		return answer

	def test_open_a_rule_and_save_it(self):
		rule = make_rule(make_customer(), priority=10)
		answer = self.browse("save_rule", rule=rule.name, priority=42)
		self.assertEqual(answer["saved_priority"], 42)
		self.assertEqual(frappe.db.get_value("Sales Automation Rule", rule.name, "priority"), 42)
		self.assertEqual(frappe.db.get_value("Sales Automation Rule", rule.name, "modified_by"), DESK_USER)

	def test_submitting_an_order_shows_its_run_completed_with_links(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=5), "qty": 2, "rate": 30}], customer=customer, submit=False
		)
		answer = self.browse("submit_order", sales_order=sales_order.name)

		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 1)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Completed", run.error)
		self.assertEqual(run.owner, DESK_USER)
		documents = documents_of(sales_order.name)
		shown = {(link["doctype"], link["name"]) for link in answer["links"]}
		self.assertIn(("Sales Automation Run", run.name), shown)
		for doctype in ("Delivery Note", "Sales Invoice", "Payment Entry"):
			self.assertEqual(len(documents[doctype]), 1, doctype)
			self.assertIn((doctype, documents[doctype][0]), shown)

	def test_retry_a_failed_run_from_its_form(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=0)
		sales_order = make_sales_order([{"item_code": item_code, "qty": 3, "rate": 20}], customer=customer)
		run = run_of(sales_order.name)
		engine.execute(run, engine.Mode.WITHOUT_RETRIES)  # no stock: the delivery fails for good
		self.assertEqual(run.status, "Failed")
		env = test_env()
		receive_stock(item_code, env.warehouse, 3, env.company, rate=50)

		answer = self.browse("retry_run", run=run.name)
		self.assertEqual(answer["before"], "Failed")
		run.reload()
		self.assertEqual(run.status, "Completed", run.error)
		documents = documents_of(sales_order.name)
		self.assertEqual(
			[len(documents[d]) for d in ("Delivery Note", "Sales Invoice", "Payment Entry")], [1, 1, 1]
		)

	def test_bulk_run_from_the_list_shows_progress_until_done(self):
		customer = make_customer()
		# submitted without automation, as orders from before the app
		sales_orders = [
			make_sales_order(
				[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10 + n}],
				customer=customer,
				automate=False,
			)
			for n in range(3)
		]
		make_rule(customer, execution_mode="Background")

		answer = self.browse("bulk_run", customer=customer, sales_orders=[so.name for so in sales_orders])

		self.assertTrue(answer["saw_progress"])
		self.assertRegex(answer["progress"], r"^[0-3] of 3 orders done$")
		self.assertEqual((answer["completed"], answer["failed"]), (3, 0), answer["summary"])
		for sales_order in sales_orders:
			runs = frappe.get_all(
				"Sales Automation Run",
				filters={"sales_order": sales_order.name},
				fields=["status", "trigger"],
			)
			self.assertEqual(runs, [{"status": "Completed", "trigger": "Bulk"}])
			documents = documents_of(sales_order.name)
			self.assertEqual(
				[len(documents[d]) for d in ("Delivery Note", "Sales Invoice", "Payment Entry")], [1, 1, 1]
			)
