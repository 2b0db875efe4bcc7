frappe.ui.form.on("Sales Automation Run", {
	refresh(frm) {
		const can_resume =
			["Queued", "Failed", "Partially Completed"].includes(frm.doc.status) &&
			(frappe.user.has_role("System Manager") || frappe.user.has_role("Sales Manager"));
		if (can_resume) {
			frm.add_custom_button(__("Resume"), () =>
				frm.call({ doc: frm.doc, method: "resume", freeze: true }).then(() => frm.reload_doc())
			);
		}
	},
});
