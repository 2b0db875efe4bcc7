"""Side effects never block the cycle: an invoice that cannot be e-mailed is a warning on its step and
in the desk, the documents stand and the run completes; with an outgoing account the e-mail is queued."""

import frappe

from sales_automation import engine
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase

NO_ACCOUNT = "outgoing Email Account"


class SideEffectsTestCase(AutomationTestCase):
	def setUp(self):
		# no account sends e-mail unless a test makes one; a background run commits, so the site's own
		# accounts are put back as they were after each test
		self.accounts = frappe.get_all(
			"Email Account", fields=["name", "enable_outgoing", "default_outgoing"]
		)
		for account in self.accounts:
			frappe.db.set_value("Email Account", account.name, {"enable_outgoing": 0, "default_outgoing": 0})
		self.forget_outgoing_account()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		for account in self.accounts:
			frappe.db.set_value(
				"Email Account",
				account.name,
				{"enable_outgoing": account.enable_outgoing, "default_outgoing": account.default_outgoing},
			)
		frappe.db.commit()
		self.forget_outgoing_account()

	def forget_outgoing_account(self):
		# Frappe keeps the outgoing account it found for the rest of the request
		frappe.local.outgoing_email_account = {}

	def emailing_order(self, execution_mode: str):
		customer = factories.make_customer(email_id=f"{frappe.generate_hash(length=8)}@example.com")
		factories.make_rule(customer, execution_mode=execution_mode, email_invoice=1)
		item_code = factories.make_item(stock_qty=5)
		return factories.make_sales_order([{"item_code": item_code, "qty": 1, "rate": 25}], customer=customer)

	def assert_completed_with_warning(self, sales_order):
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 1)
		docs = factories.documents_of(sales_order.name)
		self.assertEqual({doctype: len(names) for doctype, names in docs.items()}, dict.fromkeys(docs, 1))
		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.attempts, 1)
		self.assertFalse(run.next_retry_at)
		invoice_step = next(row for row in run.steps if row.step == "Sales Invoice")
		self.assertEqual(invoice_step.status, "Completed")
		self.assertIn(NO_ACCOUNT, invoice_step.warning)
		self.assertIn(NO_ACCOUNT, invoice_step.message)
		self.assertFalse(frappe.db.exists("Email Queue", {"reference_name": run.sales_invoice}))
		self.assertTrue(
			frappe.db.exists(
				"Notification Log",
				{
					"document_type": "Sales Automation Run",
					"document_name": run.name,
					"email_content": ["like", f"%{NO_ACCOUNT}%"],
				},
			)
		)
		return run


class TestInvoiceEmailWithoutAnAccount(SideEffectsTestCase):
	def test_same_transaction_submit_stands_and_the_run_completes_with_a_warning(self):
		sales_order = self.emailing_order("Same Transaction")
		frappe.db.commit()  # the desk is told as the submit's transaction commits
		self.assert_completed_with_warning(sales_order)

	def test_background_run_completes_with_a_warning_and_is_not_retried(self):
		sales_order = self.emailing_order("Background")
		engine.process_run(factories.run_of(sales_order.name).name, drain_seconds=0)
		self.assert_completed_with_warning(sales_order)

	def test_saving_a_rule_that_emails_invoices_warns_the_admin(self):
		frappe.local.message_log = []
		factories.make_rule(factories.make_customer(), email_invoice=1)
		self.assertTrue(any(NO_ACCOUNT in str(message) for message in frappe.local.message_log))
		frappe.local.message_log = []


class TestInvoiceEmailWithAnAccount(SideEffectsTestCase):
	def setUp(self):
		super().setUp()
		frappe.get_doc(
			{
				"doctype": "Email Account",
				"email_account_name": f"_SA Outgoing {frappe.generate_hash(length=6)}",
				"email_id": f"sa-{frappe.generate_hash(length=6)}@example.com",
				"enable_outgoing": 1,
				"default_outgoing": 1,
				"smtp_server": "127.0.0.1",
				"smtp_port": 2525,
				"no_smtp_authentication": 1,
			}
		).insert()
		self.forget_outgoing_account()

	def test_the_invoice_is_queued_to_the_customer_with_its_print_attached(self):
		sales_order = self.emailing_order("Same Transaction")
		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Completed")
		invoice_step = next(row for row in run.steps if row.step == "Sales Invoice")
		self.assertFalse(invoice_step.warning)
		recipient = frappe.db.get_value("Customer", sales_order.customer, "email_id")
		queued = frappe.get_all(
			"Email Queue",
			filters={"reference_doctype": "Sales Invoice", "reference_name": run.sales_invoice},
			fields=["name", "attachments"],
		)
		self.assertEqual(len(queued), 1)
		self.assertIn('"print_format_attachment": 1', queued[0].attachments)
		recipients = frappe.get_all(
			"Email Queue Recipient", filters={"parent": queued[0].name}, pluck="recipient"
		)
		self.assertEqual(recipients, [recipient])
