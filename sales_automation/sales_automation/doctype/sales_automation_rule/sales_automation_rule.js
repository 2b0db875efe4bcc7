// The rule form: "Test on recent orders" tries the rule as it stands on the form, unsaved changes
// included, on the last submitted Sales Orders (sales_automation.simulator): whether it matches each,
// why or why not, which rule is tried first; and the dry run of one order's cycle with it. Nothing is saved.
frappe.provide("sales_automation.rule");

frappe.ui.form.on("Sales Automation Rule", {
	setup(frm) {
		// what the server accepts (sales_automation.payment_accounts.account_refusal)
		frm.set_query("bank_account", () => ({
			filters: {
				company: frm.doc.order_company,
				account_type: ["in", ["Bank", "Cash"]],
				is_group: 0,
				disabled: 0,
			},
		}));
	},
	refresh(frm) {
		frm.add_custom_button(__("Test on recent orders"), () => sales_automation.rule.simulate(frm));
	},
});

Object.assign(sales_automation.rule, {
	FILTERS: ["customer", "company", "from_date", "to_date"],
	LIMIT: 20,

	simulate(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Test {0} on recent orders", [frm.doc.rule_name || __("this rule")]),
			size: "extra-large",
			fields: [
				{ fieldname: "customer", label: __("Customer"), fieldtype: "Link", options: "Customer" },
				{ fieldtype: "Column Break" },
				{ fieldname: "company", label: __("Company"), fieldtype: "Link", options: "Company" },
				{ fieldtype: "Column Break" },
				{ fieldname: "from_date", label: __("From Date"), fieldtype: "Date" },
				{ fieldtype: "Column Break" },
				{ fieldname: "to_date", label: __("To Date"), fieldtype: "Date" },
				{ fieldtype: "Column Break" },
				{ fieldname: "limit", label: __("Orders"), fieldtype: "Int", default: this.LIMIT },
				{ fieldtype: "Section Break" },
				{ fieldname: "orders", fieldtype: "HTML" },
				{ fieldtype: "Section Break" },
				{ fieldname: "preview", fieldtype: "HTML" },
			],
			primary_action_label: __("Refresh"),
			primary_action: () => this.list(frm, dialog),
		});
		dialog.$wrapper.addClass("sales-automation-simulator");
		dialog.show();
		this.list(frm, dialog);
	},

	list(frm, dialog) {
		const values = dialog.get_values(true) || {};
		const filters = {};
		for (const key of this.FILTERS) {
			if (values[key]) filters[key] = values[key];
		}
		dialog.fields_dict.preview.$wrapper.empty();
		return this.call("sales_automation.simulator.simulate_rule", {
			rule: frm.doc,
			filters,
			limit: values.limit || this.LIMIT,
		}).then((result) => {
			const $orders = dialog.fields_dict.orders.$wrapper;
			$orders.html(this.orders_html(result));
			$orders.find("[data-action='preview']").on("click", (event) => {
				const sales_order = $(event.currentTarget).closest("tr").attr("data-sales-order");
				this.preview(frm, dialog, sales_order);
			});
		});
	},

	preview(frm, dialog, sales_order) {
		return this.call("sales_automation.simulator.preview_order", {
			rule: frm.doc,
			sales_order,
		}).then((preview) => {
			const $preview = dialog.fields_dict.preview.$wrapper;
			$preview.html(this.preview_html(sales_order, preview));
			$preview.get(0).scrollIntoView({ block: "nearest" });
		});
	},

	call(method, args) {
		return frappe.call({ method, args, freeze: true }).then((r) => r.message);
	},

	// [label, indicator colour] of one order's verdict
	outcome(result, order) {
		if (order.would_run) return [__("Would run"), "green"];
		if (!order.matches) return [__("No match"), "gray"];
		if (order.shadowed_by) return [__("Shadowed by {0}", [order.shadowed_by]), "orange"];
		if (order.refusal) return [__("Matches, not automated"), "gray"];
		if (!result.enabled) return [__("Matches, rule disabled"), "yellow"];
		return [__("Matches"), "blue"];
	},

	why(order) {
		if (!order.matches) return order.unmet_condition;
		if (order.shadowed_by) return order.winner_reason;
		if (order.refusal) return __("The cycle does not act on this order: {0}", [order.refusal]);
		return order.reason;
	},

	orders_html(result) {
		const esc = frappe.utils.escape_html;
		const notes = [
			`<p class="text-muted">${esc(
				__("The rule as it is on this form, unsaved changes included. Nothing is saved.")
			)}</p>`,
		];
		if (!result.enabled) {
			notes.push(
				`<p class="text-warning">${esc(
					__("This rule is disabled: it takes no order until enabled.")
				)}</p>`
			);
		}
		if (!result.automation_enabled) {
			notes.push(
				`<p class="text-warning">${esc(
					__("Sales automation is switched off in Sales Automation Settings.")
				)}</p>`
			);
		}
		if (!result.orders.length) {
			notes.push(`<p>${esc(__("No submitted Sales Order you may read matches these filters."))}</p>`);
			return `<div class="sales-automation-simulator-orders" data-count="0">${notes.join("")}</div>`;
		}
		const rows = result.orders
			.map((order) => {
				const [label, colour] = this.outcome(result, order);
				return `<tr data-sales-order="${esc(order.name)}" data-matches="${order.matches ? 1 : 0}"
					data-would-run="${order.would_run ? 1 : 0}" data-shadowed-by="${esc(order.shadowed_by || "")}">
					<td><a href="${frappe.utils.get_form_link("Sales Order", order.name)}">${esc(order.name)}</a></td>
					<td>${esc(frappe.datetime.str_to_user(order.transaction_date))}</td>
					<td>${esc(order.customer_name || order.customer)}</td>
					<td>${esc(order.company)}</td>
					<td class="text-right">${esc(format_currency(order.grand_total, order.currency))}</td>
					<td><span class="indicator-pill ${colour}">${esc(label)}</span></td>
					<td class="sales-automation-why">${esc(this.why(order) || "")}</td>
					<td><button class="btn btn-xs btn-default" data-action="preview">${esc(__("Preview"))}</button></td>
				</tr>`;
			})
			.join("");
		return `<div class="sales-automation-simulator-orders" data-count="${result.orders.length}">
			${notes.join("")}
			<table class="table table-bordered table-sm">
			<thead><tr><th>${esc(__("Sales Order"))}</th><th>${esc(__("Date"))}</th><th>${esc(
			__("Customer")
		)}</th><th>${esc(__("Company"))}</th><th class="text-right">${esc(__("Grand Total"))}</th><th>${esc(
			__("This Rule")
		)}</th><th>${esc(__("Why"))}</th><th></th></tr></thead>
			<tbody>${rows}</tbody></table></div>`;
	},

	table(headings, rows) {
		const esc = frappe.utils.escape_html;
		if (!rows.length) return "";
		return `<table class="table table-bordered table-sm"><thead><tr>${headings
			.map((heading) => `<th>${esc(heading)}</th>`)
			.join("")}</tr></thead><tbody>${rows
			.map((row) => `<tr>${row.map((cell) => `<td>${esc(cell ?? "")}</td>`).join("")}</tr>`)
			.join("")}</tbody></table>`;
	},

	preview_html(sales_order, preview) {
		const esc = frappe.utils.escape_html;
		const verdict = preview.verdict;
		const parts = [
			`<h5>${esc(__("Dry run of {0} with this rule", [sales_order]))}</h5>`,
			preview.would_succeed
				? `<p class="text-success">${esc(__("Nothing was saved. Running it would succeed."))}</p>`
				: `<p class="text-danger">${esc(__("Nothing was saved. Running it would fail."))}</p>`,
			`<p class="text-muted">${esc(this.why(verdict) || "")}</p>`,
		];
		parts.push(
			this.table(
				[__("Step"), __("Status"), __("Message")],
				preview.steps.map((step) => [__(frappe.unscrub(step.step)), __(step.status), step.message])
			)
		);
		for (const document of preview.documents) {
			const total = document.grand_total ?? document.paid_amount;
			parts.push(
				`<div class="sales-automation-preview-document" data-doctype="${esc(document.doctype)}">
				<p><b>${esc(__(document.doctype))}: ${esc(format_currency(total, document.currency))}</b></p>`
			);
			if (document.items) {
				parts.push(
					this.table(
						[__("Item"), __("Qty"), __("Rate"), __("Amount"), __("Warehouse")],
						document.items.map((item) => [
							item.item_code,
							item.qty,
							format_currency(item.rate, document.currency),
							format_currency(item.amount, document.currency),
							item.warehouse,
						])
					)
				);
			} else {
				parts.push(
					`<p>${esc(
						__("From {0} to {1}, reference {2}", [
							document.paid_from,
							document.paid_to,
							document.reference_no || "",
						])
					)}</p>`
				);
			}
			parts.push("</div>");
		}
		parts.push(
			this.table(
				[__("Voucher"), __("Account"), __("Debit"), __("Credit")],
				preview.gl_entries.map((entry) => [
					__(entry.voucher_type),
					entry.account,
					format_number(entry.debit, null, 2),
					format_number(entry.credit, null, 2),
				])
			)
		);
		parts.push(
			this.table(
				[__("Voucher"), __("Item"), __("Warehouse"), __("Qty Change"), __("Qty After")],
				preview.stock_ledger_entries.map((entry) => [
					__(entry.voucher_type),
					entry.item_code,
					entry.warehouse,
					entry.actual_qty,
					entry.qty_after_transaction,
				])
			)
		);
		for (const error of preview.errors) {
			parts.push(
				`<p class="text-danger">${esc(__(frappe.unscrub(error.step)))}: ${esc(error.message)}</p>`
			);
		}
		return `<div class="sales-automation-simulator-preview" data-sales-order="${esc(sales_order)}"
			data-would-succeed="${preview.would_succeed ? 1 : 0}">${parts.join("")}</div>`;
	},
});
