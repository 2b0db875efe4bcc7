// Run when the desk loads the DocType's meta, before it makes any new rule (the form script runs only
// once its form is set up, after the first new rule exists).
//
// A new rule starts with every condition empty, as its form says ("empty fields match anything"):
// Frappe fills a new document's Link fields from the user's defaults and permissions by the linked
// DocType (the user's company and currency, whatever the field is called), which would silently narrow
// a rule saved as it opens. `no_default` stops only that fill: values a link or the URL brings (route
// options) are still set. The server side of it: the conditions' "order_" fieldnames (the rule's .py).
for (const df of frappe.meta.get_docfields("Sales Automation Rule")) {
	if (df.fieldtype === "Link") df.no_default = 1;
}
