// Package queue is sealpost's durable retry queue: it accepts messages,
// keeps them on stable storage until every recipient has been delivered
// or bounced, groups recipients by domain into deliveries, retries
// temporary failures with back-off, and writes RFC 3464 delivery status
// notifications.
package queue
