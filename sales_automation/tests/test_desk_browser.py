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

from sales_automation import engine, locks
from sales_automation.live_server import LiveServer
from sales_automation.sales_automation.doctype.sales_automation_rule.sales_automation_rule import (
	CONDITION_FIELDS,
)
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
from sales_automation.tests.setups import ensure_currency_exchange, make_foreign_customer, selling_price_list
from sales_automation.tests.test_concurrency import second_connection
from sales_automation.tests.test_scheduler_desk import queued_order
from sales_automation.tests.test_simulator import saved_everything

REPO = Path(__file__).resolve().parents[2]
BROWSER_TESTS = REPO / "browser_tests"
CHROMIUM = os.environ.get("SA_CHROMIUM", "/usr/bin/chromium")
DESK_USER = "_sa_desk_admin@example.com"
# an admin with a default company and currency, who has never opened the rule form
NEW_ADMIN = "_sa_desk_new_admin@example.com"
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


def ensure_desk_user(user: str = DESK_USER):
	if not frappe.db.exists("User", user):
		frappe.get_doc(
			{
				"doctype": "User",
				"email": user,
				"first_name": "Desk Admin",
				"send_welcome_email": 0,
				"user_type": "System User",
			}
		).insert()
	frappe.get_doc("User", user).add_roles(*DESK_ROLES)
	update_password(user, DESK_PASSWORD)
	# no "updated to a new version" dialog over the page on first login
	frappe.db.set_value("User", user, "last_known_versions", json.dumps(get_versions()))


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
		# with Frappe's realtime server, as `bench start` (and `make dev`) run it
		cls.server = LiveServer(statics=True, realtime=True).__enter__()
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

	def browse(self, scenario: str, as_user: str = DESK_USER, on_ready=None, **args) -> dict:
		"""Run one scenario of browser_tests/desk.mjs as `as_user`; its JSON answer, after its screenshot
		exists. `on_ready` is called when the scenario prints {"ready": true}."""
		frappe.db.commit()  # the server and the worker see only committed data
		shots = screenshot_dir()
		process = subprocess.Popen(
			["node", str(BROWSER_TESTS / "desk.mjs"), scenario],
			env={
				**os.environ,
				"SA_URL": self.server.url,
				"SA_SITE": self.server.site,
				"SA_USER": as_user,
				"SA_PASSWORD": DESK_PASSWORD,
				"SA_SCREENSHOTS": str(shots),
				"SA_ARGS": json.dumps(args),
				"SA_CHROMIUM": CHROMIUM,
			},
			stdout=subprocess.PIPE,
			stderr=subprocess.PIPE,
			text=True,
		)
		lines = []
		try:
			for line in process.stdout:
				lines.append(line.strip())
				if on_ready and line.strip() == '{"ready":true}':
					on_ready()
			process.wait(timeout=300)
		finally:
			if process.poll() is None:
				process.kill()
		answer = json.loads(lines[-1]) if lines else {}
		self.assertEqual(
			process.returncode,
			0,
			f"{scenario}: {answer.get('error') or process.stderr.read()[-3000:]} (see {shots})",
		)
		self.assertTrue((shots / f"{scenario}.png").is_file())
		frappe.db.rollback()  # read what the browser's requests committed
		return answer

	def test_the_order_form_turns_completed_when_the_server_tells_it(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		settings = frappe.get_single("Sales Automation Settings")
		settings.order_lock_wait_seconds = 120  # the job waits for the order while the page opens
		settings.save()
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=5), "qty": 1, "rate": 30}], customer=customer, submit=False
		)
		# the test holds the order, as a request working on it would: its run's job waits
		holder = second_connection()
		holder.cursor().execute("select get_lock(%s, 0)", (locks.lock_name(sales_order.name),))

		def let_go():
			if holder.open:
				holder.close()  # and with the connection its lock

		try:
			sales_order.submit()
			run = run_of(sales_order.name)
			answer = self.browse("watch_run", on_ready=let_go, sales_order=sales_order.name)
		finally:
			let_go()
			settings.reload()
			settings.order_lock_wait_seconds = 20
			settings.save()
			frappe.db.commit()

		self.assertEqual(frappe.db.get_value(run.doctype, run.name, "status"), "Completed")
		# moved by the server's events, not by asking: the fallback poll would come after 30 s
		self.assertEqual(answer["told_by"], "realtime")
		self.assertEqual(
			[status for _run, status, _step in answer["events"]],
			["Running", "Running", "Running", "Completed"],
		)
		self.assertEqual({name for name, _status, _step in answer["events"]}, {run.name})
		# one look per event, and the reload's own
		self.assertLessEqual(answer["order_automation_calls"], len(answer["events"]) + 1)

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

	def test_a_new_rule_opens_with_empty_conditions_and_matches_an_order_in_another_currency(self):
		env = test_env()
		ensure_desk_user(NEW_ADMIN)
		frappe.defaults.set_user_default("company", env.company, NEW_ADMIN)
		frappe.defaults.set_user_default("currency", "USD", NEW_ADMIN)
		rule_name = f"_SA Desk New Rule {frappe.generate_hash(length=6)}"
		# no condition: it would take every order of the site's later tests
		self.addCleanup(delete_rule, rule_name)

		answer = self.browse(
			"new_rule",
			as_user=NEW_ADMIN,
			rule_name=rule_name,
			priority=10**6,
			condition_fields=list(CONDITION_FIELDS),
		)

		self.assertEqual(answer["defaults"], {"company": env.company, "currency": "USD"})
		for fieldname, value in answer["conditions"].items():
			self.assertFalse(value, f"{fieldname} opened as {value}")
		rule = frappe.get_doc("Sales Automation Rule", answer["saved"])
		self.assertEqual((rule.name, rule.owner, rule.priority), (rule_name, NEW_ADMIN, 10**6))
		for fieldname in CONDITION_FIELDS:
			self.assertFalse(rule.get(fieldname), fieldname)

		ensure_currency_exchange("EUR", "USD", 1.25)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=5), "qty": 1, "rate": 20}],
			customer=make_foreign_customer("EUR"),
			currency="EUR",
			selling_price_list=selling_price_list(),
		)
		self.assertEqual(sales_order.currency, "EUR")
		run = run_of(sales_order.name)
		self.assertIsNotNone(run, "no rule took the order")
		self.assertEqual(run.rule, rule_name)

	def test_the_simulator_lists_orders_with_their_verdict_and_previews_one_saving_nothing(self):
		customer = make_customer()
		rule = make_rule(customer)
		item_code = make_item(stock_qty=5)
		big = make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 50}], customer=customer, automate=False
		)
		small = make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 30}], customer=customer, automate=False
		)
		frappe.db.commit()
		before = saved_everything()

		answer = self.browse(
			"simulate_rule",
			rule=rule.name,
			min_grand_total=50,  # on the form only, never saved
			customer=customer,
			sales_orders=[big.name, small.name],
			preview=big.name,
		)

		orders = {row["name"]: row for row in answer["orders"]}
		self.assertTrue(orders[big.name]["matches"])
		self.assertTrue(orders[big.name]["would_run"])
		self.assertFalse(orders[small.name]["matches"])
		self.assertIn("Grand Total is $ 30.00, the rule wants at least $ 50.00", orders[small.name]["why"])
		self.assertTrue(answer["preview"]["would_succeed"], answer["preview"]["text"])
		self.assertEqual(answer["preview"]["documents"], ["Delivery Note", "Sales Invoice", "Payment Entry"])
		self.assertTrue(answer["form_dirty"])
		self.assertEqual(saved_everything(), before)
		self.assertEqual(frappe.db.get_value("Sales Automation Rule", rule.name, "min_grand_total"), 0)
		self.assertEqual(
			documents_of(big.name), {"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []}
		)

	def test_an_overdue_retry_with_the_scheduler_disabled_is_told_on_the_order_and_the_workspace(self):
		self.addCleanup(restore_scheduler, frappe.db.get_single_value("System Settings", "enable_scheduler"))
		frappe.db.set_single_value("System Settings", "enable_scheduler", 0)
		sales_order, run_name, _next_retry_at = queued_order(retry_minutes_ago=15, stock_qty=5)

		answer = self.browse("overdue_retry", sales_order=sales_order.name)

		bar = answer["order_bar"]
		self.assertEqual((bar["status"], bar["red"]), ("Queued", True))
		self.assertRegex(bar["text"], r"^Retry overdue since \d")
		self.assertIn("The scheduler is disabled", bar["text"])
		self.assertIn(f"bench --site {frappe.local.site} enable-scheduler", bar["text"])
		self.assertTrue(bar["text"].endswith("or press Retry now"), bar["text"])
		self.assertEqual(answer["workspace"]["warning"], "scheduler")
		self.assertIn("The scheduler is disabled", answer["workspace"]["text"])
		self.assertRegex(answer["workspace"]["text"], r"queued runs? (is|are) overdue for (its|their) retry")
		self.assertTrue(answer["workspace"]["quiet_when_well"])
		# the bar's Retry now ran it at once
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Completed")
		documents = documents_of(sales_order.name)
		self.assertEqual(
			[len(documents[d]) for d in ("Delivery Note", "Sales Invoice", "Payment Entry")], [1, 1, 1]
		)
		self.assertEqual(answer["after_retry"], {"status": "Completed", "warning": ""})


def restore_scheduler(enabled: int):
	frappe.db.set_single_value("System Settings", "enable_scheduler", enabled)
	frappe.db.commit()  # the browser's server read it


def delete_rule(rule_name: str):
	frappe.db.rollback()  # what the test made after the browser (an order and its run) was never committed
	if frappe.db.exists("Sales Automation Rule", rule_name):
		frappe.delete_doc("Sales Automation Rule", rule_name)
	frappe.db.commit()
