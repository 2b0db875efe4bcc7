"""The order and payment payloads of run_sales_cycle: what the caller cannot forge or overflow.

Each refusal is a 422 naming the field, before anything is written: no order, no ledger row."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_field
from frappe.utils import add_days, nowdate

from sales_automation.api import run_sales_cycle
from sales_automation.exceptions import InvalidRequestError
from sales_automation.references import PLACEHOLDERS, fill_reference, pattern_error
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	count_documents,
	make_customer,
	make_item,
	order_payload,
	test_env,
)

# a whole-number field as sites add them, to reach an Int column through the payload (ERPNext's own
# order fields of that type are all computed)
INT_FIELD = "sa_test_whole_units"


class PayloadTestCase(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = test_env()
		cls.customer = make_customer()
		cls.item_code = make_item(stock_qty=100)
		frappe.db.commit()  # the endpoint rolls back on failure; fixtures must survive that

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)
		# a refused call rolls back, which would take another test's uncommitted documents with it
		frappe.db.rollback()

	def order(self, **fields) -> dict:
		return order_payload(self.customer, self.item_code, **fields)

	def order_with_item(self, **item_fields) -> dict:
		payload = self.order()
		payload["items"][0].update(item_fields)
		return payload

	def cash(self, **fields) -> dict:
		return {"mode_of_payment": self.env.cash_mode, **fields}

	def assert_refused(self, field: str, order: dict | None = None, payment: dict | None = None):
		"""The call is a 422 naming `field`, and nothing (order, documents, ledger rows) is written."""
		before = count_documents()
		with self.assertRaises(InvalidRequestError) as caught:
			run_sales_cycle(order=order or self.order(), payment=payment)
		self.assertEqual(caught.exception.field, field)
		self.assertEqual(frappe.local.response["error"]["field"], field)
		self.assertEqual(count_documents(), before)


class TestLinkedRecords(PayloadTestCase):
	"""The items, warehouses and UOMs an order's rows name are read in one query per doctype."""

	def test_the_first_row_naming_a_missing_or_disabled_record_is_the_field_refused(self):
		disabled_item = make_item()
		frappe.db.set_value("Item", disabled_item, "disabled", 1)
		frappe.db.commit()  # nosemgrep - the refused call rolls back; the fixture must survive it
		for bad_row, field in (
			({"item_code": "NO-SUCH-ITEM"}, "order.items[2].item_code"),
			({"item_code": disabled_item}, "order.items[2].item_code"),
			({"warehouse": "No Such Warehouse"}, "order.items[2].warehouse"),
			({"uom": "No Such UOM"}, "order.items[2].uom"),
		):
			payload = self.order()
			payload["items"] = [dict(payload["items"][0]) for _row in range(4)]
			payload["items"][2].update(bad_row)
			payload["items"][3]["item_code"] = "NO-SUCH-ITEM-EITHER"  # a later row is not the one named
			self.assert_refused(field, order=payload)

	def test_a_link_given_in_another_case_is_found_as_mariadb_finds_it(self):
		payload = self.order()
		payload["items"][0]["item_code"] = self.item_code.lower()
		payload["items"][0]["warehouse"] = payload["items"][0]["warehouse"].upper()
		answer = run_sales_cycle(order=payload)
		row = frappe.get_doc("Sales Order", answer["sales_order"]).items[0]
		self.assertEqual((row.item_code, row.warehouse), (self.item_code, self.env.warehouse))


class TestForgedFields(PayloadTestCase):
	def test_computed_order_field_is_refused(self):
		self.assert_refused("order.per_billed", self.order(per_billed=100))
		self.assert_refused("order.advance_paid", self.order(advance_paid=100))

	def test_computed_field_not_read_only_in_metadata_is_refused(self):
		# ERPNext keeps these hidden but editable; the order's progress must come from its documents
		self.assert_refused("order.delivery_status", self.order(delivery_status="Fully Delivered"))
		self.assert_refused("order.billing_status", self.order(billing_status="Fully Billed"))

	def test_computed_item_row_field_is_refused(self):
		self.assert_refused("order.items[0].delivered_qty", self.order_with_item(delivered_qty=1))
		self.assert_refused("order.items[0].billed_amt", self.order_with_item(billed_amt=100))

	def test_read_only_field_of_the_metadata_is_refused(self):
		self.assert_refused("order.price_list_currency", self.order(price_list_currency="USD"))
		self.assert_refused("order.items[0].net_rate", self.order_with_item(net_rate=1))

	def test_fetched_field_is_refused(self):
		self.assert_refused("order.items[0].is_stock_item", self.order_with_item(is_stock_item=0))
		self.assert_refused("order.customer_name", self.order(customer_name="Someone Else"))

	def test_computed_field_of_another_child_table_is_refused(self):
		schedule = [
			{"due_date": nowdate(), "invoice_portion": 100, "payment_amount": 100, "paid_amount": 100}
		]
		self.assert_refused("order.payment_schedule[0].paid_amount", self.order(payment_schedule=schedule))

	def test_documented_fields_are_accepted_and_stored(self):
		# price_list_rate is read_only in the metadata yet an input: rate is derived from it
		payload = self.order(
			currency="USD",
			transaction_date=nowdate(),
			po_no="PO-VALID-1",
			set_warehouse=self.env.warehouse,
			selling_price_list="Standard Selling",
		)
		payload["items"][0].update(
			qty=2,
			price_list_rate=100,
			discount_percentage=10,
			rate=90,
			uom="Nos",
			delivery_date=add_days(nowdate(), 2),
			description="first line\nsecond line\twith a tab",
		)
		result = run_sales_cycle(order=payload, payment=self.cash())

		sales_order = frappe.get_doc("Sales Order", result["sales_order"])
		self.assertEqual(sales_order.po_no, "PO-VALID-1")
		self.assertEqual(sales_order.grand_total, 180)
		self.assertEqual(sales_order.status, "Completed")
		row = sales_order.items[0]
		self.assertEqual((row.price_list_rate, row.discount_percentage, row.rate), (100, 10, 90))
		self.assertEqual(row.description, "first line\nsecond line\twith a tab")


class TestNumbers(PayloadTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		create_custom_field(
			"Sales Order Item", {"fieldname": INT_FIELD, "label": "SA Test Whole Units", "fieldtype": "Int"}
		)
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.delete_doc("Custom Field", f"Sales Order Item-{INT_FIELD}", force=True)
		frappe.db.commit()
		super().tearDownClass()

	def test_nan_is_refused(self):
		self.assert_refused("order.items[0].qty", self.order_with_item(qty=float("nan")))
		self.assert_refused("payment.amount", payment=self.cash(amount=float("nan")))

	def test_infinity_is_refused(self):
		self.assert_refused("order.items[0].rate", self.order_with_item(rate=float("inf")))

	def test_negative_infinity_is_refused(self):
		self.assert_refused(
			"order.items[0].price_list_rate", self.order_with_item(price_list_rate=float("-inf"))
		)

	def test_number_beyond_the_decimal_column_is_refused(self):
		self.assert_refused("order.items[0].rate", self.order_with_item(rate=1e308))
		self.assert_refused("order.items[0].qty", self.order_with_item(qty=1e12))
		self.assert_refused("order.conversion_rate", self.order(conversion_rate=10**30))

	def test_qty_that_rounds_to_zero_is_refused(self):
		self.assert_refused("order.items[0].qty", self.order_with_item(qty=1e-12))

	def test_negative_rate_is_refused(self):
		self.assert_refused("order.items[0].rate", self.order_with_item(rate=-0.01))

	def test_discount_above_100_percent_is_refused(self):
		self.assert_refused(
			"order.items[0].discount_percentage", self.order_with_item(discount_percentage=101)
		)
		self.assert_refused(
			"order.items[0].discount_percentage", self.order_with_item(discount_percentage=1e15)
		)
		self.assert_refused(
			"order.additional_discount_percentage", self.order(additional_discount_percentage=150)
		)

	def test_int_out_of_range_or_not_whole_is_refused(self):
		self.assertTrue(frappe.get_meta("Sales Order Item").has_field(INT_FIELD))
		self.assert_refused(f"order.items[0].{INT_FIELD}", self.order_with_item(**{INT_FIELD: 2**31}))
		self.assert_refused(f"order.items[0].{INT_FIELD}", self.order_with_item(**{INT_FIELD: -(2**31)}))
		self.assert_refused(f"order.items[0].{INT_FIELD}", self.order_with_item(**{INT_FIELD: 2.5}))

	def test_check_other_than_0_or_1_is_refused(self):
		self.assert_refused("order.ignore_pricing_rule", self.order(ignore_pricing_rule=2))

	def test_amount_beyond_the_column_is_refused_though_each_number_fits(self):
		self.assert_refused("order.items[0]", self.order_with_item(qty=1e6, rate=1e7))
		self.assert_refused("order.items[0]", self.order(conversion_rate=1e11))

	def test_taxes_beyond_the_column_are_refused(self):
		taxes = [
			{
				"charge_type": "On Net Total",
				"account_head": f"Cash - {self.env.abbr}",
				"description": "a tax of a billion percent",
				"rate": 1e11,
			}
		]
		# each number fits; the tax on 1000 comes to 1e12, which does not
		self.assert_refused("order.items", self.order(rate=1000, taxes=taxes))

	def test_payment_amount_out_of_range_is_refused(self):
		self.assert_refused("payment.amount", payment=self.cash(amount=1e12))
		self.assert_refused("payment.amount", payment=self.cash(amount=1e-12))
		self.assert_refused("payment.amount", payment=self.cash(amount=float("inf")))

	def test_int_in_range_is_stored(self):
		result = run_sales_cycle(order=self.order_with_item(**{INT_FIELD: 2**31 - 1}), payment=self.cash())
		row = frappe.get_doc("Sales Order", result["sales_order"]).items[0]
		self.assertEqual(row.get(INT_FIELD), 2**31 - 1)


class TestStrings(PayloadTestCase):
	def test_control_character_in_a_data_field_is_refused(self):
		self.assert_refused("order.po_no", self.order(po_no="PO\x001"))
		self.assert_refused("order.po_no", self.order(po_no="PO\n1"))

	def test_control_character_in_a_link_field_is_refused(self):
		self.assert_refused("order.items[0].warehouse", self.order_with_item(warehouse="Stores\x1b[2J"))

	def test_control_character_other_than_line_breaks_in_text_is_refused(self):
		self.assert_refused("order.items[0].description", self.order_with_item(description="a\x07b"))

	def test_string_longer_than_its_column_is_refused(self):
		self.assert_refused("order.po_no", self.order(po_no="P" * 141))
		self.assert_refused("order.items[0].uom", self.order_with_item(uom="U" * 141))

	def test_select_value_outside_its_options_is_refused(self):
		self.assert_refused("order.order_type", self.order(order_type="Barter"))

	def test_control_character_in_payment_reference_is_refused(self):
		self.assert_refused("payment.reference_no", payment=self.cash(reference_no="PSP\x074711"))
		self.assert_refused("payment.reference_no", payment=self.cash(reference_no="R" * 141))


class TestReferences(PayloadTestCase):
	def test_caller_reference_no_is_stored_verbatim(self):
		for reference_no in ("PSP-{4711}", "{sales_order.__class__}", "{sales_order}"):
			with self.subTest(reference_no=reference_no):
				result = run_sales_cycle(order=self.order(), payment=self.cash(reference_no=reference_no))
				self.assertEqual(
					frappe.db.get_value("Payment Entry", result["payment_entry"], "reference_no"),
					reference_no,
				)

	def test_fill_reference_replaces_only_the_placeholders_as_text(self):
		values = {"sales_order": "SO-1", "po_no": "PO-{customer}", "customer": "ACME", "sales_invoice": None}
		self.assertEqual(fill_reference("SO/{sales_order}/{po_no}", values), "SO/SO-1/PO-{customer}")
		self.assertEqual(fill_reference("{sales_invoice}|{customer}", values), "|ACME")
		for literal in ("PSP-{4711}", "{sales_order.__class__}", "{sales_order:>99}", "{0}", "}{", "{"):
			self.assertEqual(fill_reference(literal, values), literal)
		self.assertEqual(fill_reference("{{sales_order}}", values), "{SO-1}")
		self.assertEqual(fill_reference("{customer}" * 40, values), "ACME" * 35)

	def test_pattern_error_accepts_only_the_placeholders(self):
		for pattern in ("{sales_order}", "SO/{sales_order}/{po_no}", "{customer}-{sales_invoice}", "PAY-1"):
			self.assertIsNone(pattern_error(pattern), pattern)
		self.assertEqual(PLACEHOLDERS, ("sales_order", "po_no", "customer", "sales_invoice"))
		bad = (
			"{order_id}",
			"{sales_order.__class__}",
			"{sales_order:>999}",
			"{sales_order!r}",
			"{0}",
			"{}",
			"{",
			"}{",
			"{{sales_order}}",
			"SO\n{sales_order}",
			"R" * 141,
		)
		for pattern in bad:
			self.assertIsInstance(pattern_error(pattern), str, pattern)


class TestInputsERPNextRecomputes(PayloadTestCase):
	"""conversion_factor, stock_qty, stock_uom, item_group and brand: read-only in the metadata, but inputs
	ERPNext's own REST API takes. Taken when they agree with the item's master data, refused naming the
	field and the value that data gives when they contradict it (api.master_data)."""

	@classmethod
	def setUpClass(cls):
		from sales_automation.tests.setups import make_item_sold_in

		super().setUpClass()
		cls.box_item = make_item_sold_in("Box", 12, stock_qty=60)
		frappe.db.commit()  # nosemgrep - the refused calls roll back; the fixture must survive them

	def box_order(self, **item_fields) -> dict:
		payload = order_payload(self.customer, self.box_item, qty=2, rate=120)
		payload["items"][0].update({"uom": "Box", **item_fields})
		return payload

	def test_a_conversion_factor_matching_the_uom_table_completes_the_cycle(self):
		item = frappe.db.get_value("Item", self.box_item, ["stock_uom", "item_group"], as_dict=True)
		answer = run_sales_cycle(
			order=self.box_order(
				conversion_factor=12, stock_qty=24, stock_uom=item.stock_uom, item_group=item.item_group
			),
			payment=self.cash(),
		)
		self.assertEqual(answer["status"], "Completed")
		row = frappe.get_doc("Sales Order", answer["sales_order"]).items[0]
		self.assertEqual((row.uom, row.conversion_factor, row.stock_qty), ("Box", 12, 24))
		moved = frappe.db.get_value(
			"Stock Ledger Entry",
			{"voucher_no": answer["delivery_note"], "is_cancelled": 0},
			"sum(actual_qty)",
		)
		self.assertEqual(moved, -24)  # 2 boxes of 12 left the warehouse

	def test_a_conversion_factor_contradicting_the_uom_table_is_refused_with_the_expected_value(self):
		self.assert_refused("order.items[0].conversion_factor", self.box_order(conversion_factor=10))
		self.assertIn("must be 12", frappe.local.response["error"]["message"])
		# a line in the stock UOM has a factor of 1, whatever the caller says
		self.assert_refused("order.items[0].conversion_factor", self.order_with_item(conversion_factor=12))
		self.assertIn("must be 1", frappe.local.response["error"]["message"])

	def test_a_line_without_uom_is_checked_against_the_items_sales_uom(self):
		payload = order_payload(self.customer, self.box_item, qty=1, rate=120)
		payload["items"][0]["conversion_factor"] = 12  # ERPNext gives the line the sales UOM: Box
		answer = run_sales_cycle(order=payload)
		row = frappe.get_doc("Sales Order", answer["sales_order"]).items[0]
		self.assertEqual((row.uom, row.conversion_factor), ("Box", 12))

	def test_stock_qty_stock_uom_and_item_group_contradicting_the_item_are_refused(self):
		self.assert_refused("order.items[0].stock_qty", self.box_order(stock_qty=2))
		self.assertIn("must be 24", frappe.local.response["error"]["message"])
		self.assert_refused("order.items[0].stock_uom", self.box_order(stock_uom="Box"))
		self.assert_refused("order.items[0].item_group", self.box_order(item_group="Services"))

	def test_the_delivery_warehouse_label_is_refused_naming_the_field_to_use(self):
		payload = self.order()
		payload["items"][0]["delivery_warehouse"] = payload["items"][0].pop("warehouse")
		self.assert_refused("order.items[0].delivery_warehouse", payload)
		self.assertIn("use warehouse", frappe.local.response["error"]["message"])
