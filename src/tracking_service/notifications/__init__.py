"""Customer email: which events become which email (pure), quiet hours (pure), the templates,
the message and the SMTP sender; the store and the jobs around them.

Pure core: `plan.intents_for` turns one outbox event into the notifications it calls for,
`quiet_hours.not_before` holds one until the customer's morning, `render.render` writes its
subject, text and HTML in the order's language, `message.build_message` makes the MIME
message. Edge: `smtp.SmtpSender` sends it and classifies the outcome (sent, retry later,
recipient refused for good), never raising for SMTP trouble.
"""
