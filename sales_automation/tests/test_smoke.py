"""Smoke tests of the environment itself: ERPNext's own sales cycle, in-process and over HTTP."""

import frappe
from frappe.utils import flt

from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry
from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note
from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_invoice

from sales_automation.live_server import LiveServer, rest_cycle
from sales_automation.setup.demo import SALES_ROLES, ensure_api_user
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import gl_totals, make_item, make_sales_order, test_env


class TestEnvironmentSmoke(IntegrationTestCase):
	def assert_cycle_closed(
		self, sales_order_name, delivery_note_name, sales_invoice_name, payment_entry_name
	):
		sales_order = frappe.get_doc("Sales Order", sales_order_name)
		self.assertEqual(sales_order.status, "Completed")
		self.assertEqual(flt(sales_order.per_delivered), 100)
		self.assertEqual(flt(sales_order.per_billed), 100)
		self.assertEqual(frappe.db.get_value("Sales Invoice", sales_invoice_name, "status"), "Paid")
		self.assertEqual(frappe.db.get_value("Sales Invoice", sales_invoice_name, "outstanding_amount"), 0)
		self.assertEqual(frappe.db.get_value("Payment Entry", payment_entry_name, "docstatus"), 1)
		self.assertEqual(frappe.db.get_value("Delivery Note", delivery_note_name, "docstatus"), 1)
		vouchers = [delivery_note_name, sales_invoice_name, payment_entry_name]
		for voucher in vouchers:
			self.assertTrue(frappe.db.exists("GL Entry", {"voucher_no": voucher, "is_cancelled": 0}), voucher)
		debit, credit = gl_totals(vouchers)
		self.assertGreater(debit, 0)
		self.assertEqual(debit, credit)

	def test_mapper_flow_in_process_completes_and_pays_the_order(self):
		env = test_env()
		item_code = make_item(stock_qty=10)
		sales_order = make_sales_order([{"item_code": item_code, "qty": 3, "rate": 120}])

		delivery_note = make_delivery_note(sales_order.name)
		delivery_note.insert()
		delivery_note.submit()
		sales_invoice = make_sales_invoice(delivery_note.name)
		sales_invoice.insert()
		sales_invoice.submit()
		payment_entry = get_payment_entry("Sales Invoice", sales_invoice.name, bank_account=env.cash_account)
		payment_entry.insert()
		payment_entry.submit()

		self.assert_cycle_closed(sales_order.name, delivery_note.name, sales_invoice.name, payment_entry.name)
		self.assertEqual(
			frappe.db.get_value(
				"Stock Ledger Entry",
				{"voucher_no": delivery_note.name, "is_cancelled": 0},
				"actual_qty",
			),
			-3,
		)

	def test_mapper_flow_over_http_with_token_auth_completes_and_pays_the_order(self):
		env = test_env()
		item_code = make_item(stock_qty=10)
		api_key, api_secret = ensure_api_user("_sa_smoke_http@example.com", SALES_ROLES)
		frappe.db.commit()  # the server runs in other processes and sees only committed data

		with LiveServer() as server:
			http = server.session(api_key, api_secret)

			self.assertEqual(
				http.post(f"{server.url}/api/method/frappe.auth.get_logged_user").json()["message"],
				"_sa_smoke_http@example.com",
			)
			documents = rest_cycle(
				http,
				server.url,
				{
					"customer": env.customer,
					"company": env.company,
					"delivery_date": frappe.utils.add_days(frappe.utils.nowdate(), 3),
					"items": [{"item_code": item_code, "qty": 2, "rate": 99.5, "warehouse": env.warehouse}],
				},
				bank_account=env.cash_account,
			)
			sales_order, delivery_note, sales_invoice, payment_entry = documents.values()

		frappe.db.rollback()  # start a new transaction to read what the server committed
		self.assertEqual(sales_invoice["grand_total"], 199)
		self.assert_cycle_closed(
			sales_order["name"], delivery_note["name"], sales_invoice["name"], payment_entry["name"]
		)
