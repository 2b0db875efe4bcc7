"""Order line inputs ERPNext itself recomputes or fills from the Item: taken when they agree with the
item's master data, refused naming the field and the value that data gives when they contradict it.

ERPNext keeps any non-zero `conversion_factor` a caller sends (get_item_details only fills it when it is
empty), and the stock quantity moved is qty x conversion_factor: a wrong one moves the wrong stock. The
app is stricter than ERPNext on purpose, but never stricter than the master data: the value ERPNext's own
get_conversion_factor gives for the line's UOM is the truth. stock_qty is recomputed by ERPNext as qty x
conversion_factor (SellingController.set_qty_as_per_stock_uom); stock_uom, item_group and brand are
copied from the Item (get_item_details). The progress and status fields (delivered_qty, per_billed, ...)
stay refused: validation.COMPUTED_FIELDS."""

import frappe
from frappe import _
from frappe.model.meta import get_field_precision
from frappe.utils import flt

# Sales Order Item fields read_only in the metadata that are inputs checked against the Item
ITEM_INPUTS = ("conversion_factor", "stock_qty", "stock_uom", "item_group", "brand")
ITEM_COPIED = ("stock_uom", "item_group", "brand")


def is_item_input(doctype: str, fieldname: str) -> bool:
	return doctype == "Sales Order Item" and fieldname in ITEM_INPUTS


def contradiction(path: str, row: dict) -> tuple[str, str] | None:
	"""The first input of the line that contradicts the master data, as (field, message); None when all
	agree."""
	given = [field for field in ITEM_INPUTS if row.get(field) is not None]
	if not given:
		return None
	from erpnext.stock.get_item_details import get_conversion_factor

	item_code = row["item_code"]
	item = frappe.db.get_value(
		"Item", item_code, ["stock_uom", "sales_uom", "item_group", "brand"], as_dict=True
	)
	for field in ITEM_COPIED:
		if field in given and row[field] != item[field]:
			return f"{path}.{field}", _("must be {0}, as Item {1} has it").format(
				item[field] or _("empty"), item_code
			)
	if "conversion_factor" not in given and "stock_qty" not in given:
		return None
	# the UOM ERPNext gives a line that names none: the item's sales UOM, else its stock UOM
	uom = row.get("uom") or item.sales_uom or item.stock_uom
	expected = (
		1.0 if uom == item.stock_uom else flt(get_conversion_factor(item_code, uom)["conversion_factor"])
	)
	meta = frappe.get_meta("Sales Order Item")
	precision = get_field_precision(meta.get_field("conversion_factor"))
	if "conversion_factor" in given and flt(row["conversion_factor"], precision) != flt(expected, precision):
		return f"{path}.conversion_factor", _("must be {0}: 1 {1} is {0} {2} for Item {3}").format(
			number(expected), uom, item.stock_uom, item_code
		)
	precision = get_field_precision(meta.get_field("stock_qty"))
	stock_qty = flt(flt(row.get("qty")) * expected, precision)
	if "stock_qty" in given and flt(row["stock_qty"], precision) != stock_qty:
		return f"{path}.stock_qty", _("must be {0}: qty x {1}, the conversion factor of {2} to {3}").format(
			number(stock_qty), number(expected), uom, item.stock_uom
		)
	return None


def number(value: float) -> str:
	return f"{value:g}"
