"""Sales Automation Settings as the engine reads them: cached, with defaults for what a site never saved;
and the ERPNext Settings the cycle's documents read, fetched in one statement."""

import time

import frappe
from frappe.model import no_value_fields
from frappe.utils import cast, cint


def get_settings():
	return frappe.get_cached_doc("Sales Automation Settings")


# How long a caller waits for an order another request or job is working on before it gets a 409
# (Settings: order_lock_wait_seconds). The longest holder is one call at 100 lines (about 5 s) or one
# background run.
DEFAULT_ORDER_LOCK_WAIT_SECONDS = 20


def order_lock_wait() -> int:
	return setting_or("order_lock_wait_seconds", DEFAULT_ORDER_LOCK_WAIT_SECONDS)


def setting_or(fieldname: str, default: int) -> int:
	"""A whole-number setting (0 included), or `default` where a site has never saved it."""
	value = get_settings().get(fieldname)
	return default if value in (None, "") else cint(value)


# The Singles that ERPNext's documents of one cycle read field by field (the order's submit, the
# Delivery Note, the Sales Invoice and the Payment Entry: 27 reads on a fresh connection).
SETTINGS_THE_CYCLE_READS = (
	"Selling Settings",
	"Stock Settings",
	"Accounts Settings",
	"Energy Point Settings",
)


def prefetch_cycle_settings() -> None:
	"""Read the Singles of SETTINGS_THE_CYCLE_READS in one statement into Frappe's per-connection cache.

	`frappe.db.get_single_value` caches each field on the database connection the first time it is
	read; every request and background job starts a new connection, so the cycle's documents would
	otherwise send one statement per field. The values are cached exactly as get_single_value would
	cache them (the field's type cast, a field never saved as None cast), and Frappe drops them on a
	change as it drops its own (set_single_value, set_value). Doctypes already fully cached are skipped."""
	cache = frappe.db.value_cache
	fields = {doctype: value_fields(doctype) for doctype in SETTINGS_THE_CYCLE_READS}
	missing = [
		doctype
		for doctype, doctype_fields in fields.items()
		if not doctype_fields.keys() <= cache.get(doctype, {}).keys()
	]
	if not missing:
		return
	Singles = frappe.qb.DocType("Singles")
	saved = {
		(doctype, field): value
		for doctype, field, value in frappe.qb.from_(Singles)
		.select(Singles.doctype, Singles.field, Singles.value)
		.where(Singles.doctype.isin(missing))
		.run()
	}
	for doctype in missing:
		doctype_cache = cache.setdefault(doctype, {})
		for fieldname, fieldtype in fields[doctype].items():
			doctype_cache[fieldname] = cast(fieldtype, saved.get((doctype, fieldname)))


def value_fields(doctype: str) -> dict[str, str]:
	"""{fieldname: fieldtype} of the fields of a Single that hold a value.

	Loading the four Settings' metadata costs a request more than the fetch itself, so the field types
	are kept in this process, per site, while the site's `metadata_version` stands (Frappe sets a new one
	whenever a DocType's metadata changes: `frappe.clear_cache` on a DocType, Custom Field, Property
	Setter or Customize Form save, and on migrate) and for at most VALUE_FIELDS_TTL seconds, which bounds
	what a change saved while a request was reading the metadata can leave behind."""
	version = frappe.cache.get_value("metadata_version")
	if not version:
		return read_value_fields(doctype)
	key = (frappe.local.site, version)
	expires, fields = _VALUE_FIELDS.get(key, (0, None))
	if fields is None or expires < time.monotonic():
		# an older version's are never read again (a copy of the keys, and pop: a threaded worker's other
		# requests may be here at the same time)
		for known in list(_VALUE_FIELDS):
			if known[0] == frappe.local.site:
				_VALUE_FIELDS.pop(known, None)
		fields = {}
		_VALUE_FIELDS[key] = (time.monotonic() + VALUE_FIELDS_TTL, fields)
	if doctype not in fields:
		fields[doctype] = read_value_fields(doctype)
	return fields[doctype]


VALUE_FIELDS_TTL = 60
# {(site, metadata_version): (when it expires, {doctype: {fieldname: fieldtype}})}: value_fields
_VALUE_FIELDS: dict[tuple[str, str], tuple[float, dict[str, dict[str, str]]]] = {}


def read_value_fields(doctype: str) -> dict[str, str]:
	return {
		df.fieldname: df.fieldtype
		for df in frappe.get_meta(doctype).fields
		if df.fieldtype not in no_value_fields
	}
