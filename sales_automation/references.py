"""Payment references from a rule's pattern: only the documented placeholders, replaced as plain text.

A pattern is data, never a format string: str.format would let `{sales_order.__class__}` read attributes
and `{sales_order:>99999}` pad without bound, and refuses a literal brace."""

import re

from frappe import _

PLACEHOLDERS = ("sales_order", "po_no", "customer", "sales_invoice")
MAX_LENGTH = 140  # Payment Entry's reference_no is a Data field
TOKEN = re.compile(r"\{([^{}]*)\}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def fill_reference(pattern: str, values: dict) -> str:
	"""`pattern` with each {placeholder} replaced by its value, other braces kept, cut to 140 characters.

	One pass: a value that itself contains `{customer}` stays as it is. A placeholder missing from
	`values` (or None) becomes empty."""

	def replace(match):
		name = match.group(1)
		if name not in PLACEHOLDERS:
			return match.group(0)
		value = values.get(name)
		return "" if value is None else str(value)

	return TOKEN.sub(replace, pattern)[:MAX_LENGTH]


def pattern_error(pattern: str) -> str | None:
	"""Why `pattern` cannot be a reference pattern, or None when it can."""
	allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
	if len(pattern) > MAX_LENGTH:
		return _("must be at most {0} characters long").format(MAX_LENGTH)
	if CONTROL_CHARACTERS.search(pattern):
		return _("must not contain control characters or line breaks")
	for name in TOKEN.findall(pattern):
		if name not in PLACEHOLDERS:
			return _("{0} is not a placeholder; use only {1}").format("{" + name + "}", allowed)
	# a brace outside a placeholder reads as a mistyped one (`{sales_order`, `}{`)
	rest = TOKEN.sub("", pattern)
	if "{" in rest or "}" in rest:
		return _("has a brace that is not part of a placeholder; use only {0}").format(allowed)
	return None
