"""The payment goes where the caller (or the rule) says: payment.bank_account, the rule's Receiving Account,
the pay endpoint's bank_account, and received_amount for a bank account in another currency."""

import frappe
from frappe.utils import flt

from sales_automation.api import invoice, pay, run_sales_cycle
from sales_automation.exceptions import InvalidRequestError, InvalidRuleError
from sales_automation.tests.base import EndpointTestCase
from sales_automation.tests.factories import (
	ABBR,
	count_documents,
	ensure_ledger_account,
	gl_totals,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	order_payload,
)
from sales_automation.tests.setups import ensure_currency_exchange, ensure_second_company


class TestPaymentAccount(EndpointTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.second_bank = ensure_ledger_account("_SA Second Bank", "Bank Accounts", "Bank")
		cls.euro_bank = ensure_ledger_account("_SA Euro Bank", "Bank Accounts", "Bank", currency="EUR")
		cls.euro_rate = ensure_currency_exchange("EUR", "USD", 1.1)
		cls.other_company_cash = ensure_second_company().cash_account
		cls.income_account = ensure_ledger_account("_SA Other Income", "Direct Income", "Income Account")
		frappe.db.commit()  # nosemgrep - the refused calls roll back; the fixtures must survive them

	def fixtures(self):
		customer = make_customer()
		item_code = make_item(stock_qty=10)
		frappe.db.commit()  # nosemgrep - the refused calls roll back; the fixtures must survive them
		return customer, item_code

	def assert_received_by(self, payment_entry_name: str, account: str):
		"""The Payment Entry is submitted, pays into `account` and its ledger balances."""
		payment_entry = frappe.db.get_value(
			"Payment Entry", payment_entry_name, ["docstatus", "paid_to"], as_dict=True
		)
		self.assertEqual((payment_entry.docstatus, payment_entry.paid_to), (1, account))
		debit, credit = gl_totals([payment_entry_name])
		self.assertGreater(debit, 0)
		self.assertEqual(debit, credit)
		bank_debit = frappe.db.get_value(
			"GL Entry",
			{"voucher_no": payment_entry_name, "account": account, "is_cancelled": 0},
			"sum(debit)",
		)
		self.assertEqual(flt(bank_debit, 2), debit)

	def assert_refused(self, field: str, **call):
		"""The call is a 422 naming `field`, and no order, document or ledger row is written."""
		before = count_documents()
		with self.assertRaises(InvalidRequestError) as caught:
			run_sales_cycle(**call)
		self.assertEqual(caught.exception.field, field)
		self.assertEqual(frappe.local.response["error"]["field"], field)
		self.assertEqual(count_documents(), before)

	def test_the_callers_bank_account_receives_the_payment(self):
		customer, item_code = self.fixtures()
		result = run_sales_cycle(
			order=order_payload(customer, item_code, qty=2, rate=40),
			payment={"bank_account": self.second_bank},
		)
		self.assertEqual(result["status"], "Completed")
		self.assert_received_by(result["payment_entry"], self.second_bank)
		self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")

	def test_the_callers_bank_account_wins_over_the_mode_of_payments(self):
		customer, item_code = self.fixtures()
		result = run_sales_cycle(
			order=order_payload(customer, item_code),
			payment={"mode_of_payment": self.env.cash_mode, "bank_account": self.second_bank},
		)
		self.assert_received_by(result["payment_entry"], self.second_bank)
		self.assertEqual(
			frappe.db.get_value("Payment Entry", result["payment_entry"], "mode_of_payment"),
			self.env.cash_mode,
		)

	def test_an_account_that_cannot_receive_the_payment_is_refused_before_anything_is_made(self):
		customer, item_code = self.fixtures()
		for account in (
			self.other_company_cash,
			self.income_account,
			f"Bank Accounts - {ABBR}",  # a group
			"No Such Account",
		):
			with self.subTest(account=account):
				self.assert_refused(
					"payment.bank_account",
					order=order_payload(customer, item_code),
					payment={"bank_account": account},
				)
		self.assertFalse(frappe.db.exists("Sales Order", {"customer": customer}))

	def test_an_account_of_another_company_than_the_existing_orders_is_refused(self):
		customer, item_code = self.fixtures()
		sales_order = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 10}], customer=customer)
		frappe.db.commit()  # nosemgrep - the refused call rolls back; the fixture must survive it
		self.assert_refused(
			"payment.bank_account",
			sales_order=sales_order.name,
			payment={"bank_account": self.other_company_cash},
		)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "per_delivered"), 0)

	def test_the_rules_receiving_account_is_used_when_the_call_names_none(self):
		customer, item_code = self.fixtures()
		make_rule(customer, bank_account=self.second_bank)
		frappe.db.commit()  # nosemgrep - the rule must be seen by the call
		result = run_sales_cycle(order=order_payload(customer, item_code))
		self.assertIsNotNone(result["rule"])
		self.assert_received_by(result["payment_entry"], self.second_bank)

	def test_the_callers_bank_account_wins_over_the_rules(self):
		customer, item_code = self.fixtures()
		make_rule(customer, bank_account=self.second_bank)
		frappe.db.commit()  # nosemgrep - the rule must be seen by the call
		main_bank = self.env.bank_account
		result = run_sales_cycle(
			order=order_payload(customer, item_code), payment={"bank_account": main_bank}
		)
		self.assert_received_by(result["payment_entry"], main_bank)

	def test_pay_takes_the_bank_account(self):
		customer, item_code = self.fixtures()
		sales_order = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 25}], customer=customer)
		frappe.db.commit()  # nosemgrep - the refused call rolls back; the fixture must survive it
		invoiced = invoice(sales_order=sales_order.name, update_stock=True)
		frappe.db.commit()  # nosemgrep - the refused call below rolls back; the invoice must survive it
		before = count_documents()
		with self.assertRaises(InvalidRequestError) as caught:
			pay(sales_invoice=invoiced["name"], bank_account=self.income_account)
		self.assertEqual(caught.exception.field, "bank_account")
		self.assertEqual(count_documents(), before)

		paid = pay(sales_invoice=invoiced["name"], bank_account=self.second_bank)
		self.assert_received_by(paid["name"], self.second_bank)
		self.assertEqual(frappe.db.get_value("Sales Invoice", invoiced["name"], "status"), "Paid")

	def test_received_amount_is_what_reaches_a_bank_in_another_currency(self):
		customer, item_code = self.fixtures()
		result = run_sales_cycle(
			order=order_payload(customer, item_code, qty=1, rate=110),
			payment={"bank_account": self.euro_bank, "received_amount": 99.5},
		)
		payment_entry = frappe.db.get_value(
			"Payment Entry",
			result["payment_entry"],
			["paid_to", "paid_amount", "received_amount", "base_received_amount"],
			as_dict=True,
		)
		self.assertEqual(payment_entry.paid_to, self.euro_bank)
		self.assertEqual(flt(payment_entry.paid_amount), 110)
		self.assertEqual(flt(payment_entry.received_amount), 99.5)
		# ERPNext books the bank at the day's rate; the rest of the 110 is an exchange loss
		ledger = {
			row.account: row
			for row in frappe.get_all(
				"GL Entry",
				filters={"voucher_no": result["payment_entry"], "is_cancelled": 0},
				fields=["account", "debit", "credit", "debit_in_account_currency"],
			)
		}
		bank_entry = ledger[self.euro_bank]
		self.assertEqual(flt(bank_entry.debit_in_account_currency), 99.5)
		self.assertEqual(flt(bank_entry.debit), flt(99.5 * self.euro_rate, 2))
		exchange_account = frappe.get_cached_value("Company", self.env.company, "exchange_gain_loss_account")
		self.assertEqual(flt(ledger[exchange_account].debit, 2), flt(110 - flt(bank_entry.debit), 2))
		debit, credit = gl_totals([result["payment_entry"]])
		self.assertEqual((debit, credit), (110, 110))
		self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")

	def test_received_amount_for_an_account_in_the_customers_currency_is_refused(self):
		customer, item_code = self.fixtures()
		for payment in (
			{"bank_account": self.second_bank, "received_amount": 90},
			{"received_amount": 90},  # the company's default bank account, in its currency
		):
			with self.subTest(payment=payment):
				self.assert_refused(
					"payment.received_amount", order=order_payload(customer, item_code), payment=payment
				)
		self.assert_refused(
			"payment.received_amount",
			order=order_payload(customer, item_code),
			payment={"bank_account": self.euro_bank, "received_amount": 0},
		)


class TestRuleReceivingAccount(EndpointTestCase):
	def test_the_rules_receiving_account_must_be_a_bank_or_cash_ledger_of_its_company(self):
		second_bank = ensure_ledger_account("_SA Second Bank", "Bank Accounts", "Bank")
		other_company_cash = ensure_second_company().cash_account
		income_account = ensure_ledger_account("_SA Other Income", "Direct Income", "Income Account")
		customer = make_customer()
		label = frappe.get_meta("Sales Automation Rule").get_label("bank_account")
		for fields in (
			{"bank_account": other_company_cash},
			{"bank_account": income_account},
			{"bank_account": f"Bank Accounts - {ABBR}"},
			{"bank_account": second_bank, "order_company": None},
		):
			with self.subTest(fields=fields):
				with self.assertRaises(InvalidRuleError) as caught:
					make_rule(customer, **fields)
				self.assertIn(label, str(caught.exception))
		rule = make_rule(customer, bank_account=second_bank)
		self.assertEqual(frappe.db.get_value("Sales Automation Rule", rule.name, "bank_account"), second_bank)
