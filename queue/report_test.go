package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

func TestSendReport(t *testing.T) {
	var mu sync.Mutex
	var bounced []string
	h := newHarness(t, func(c *queue.Config) {
		c.ReportBounced = func(_ context.Context, addr, reason string) error {
			mu.Lock()
			bounced = append(bounced, addr+": "+reason)
			mu.Unlock()
			return nil
		}
	})
	h.d.set("gone@reports.example", delivery.PermanentFailure)
	msg := []byte("From: tlsrpt@mta.sealpost.test\r\nTLS-Required: No\r\nSubject: Report Domain: example.com\r\n\r\nreport\r\n")
	if err := h.q.SendReport(context.Background(), "tlsrpt@mta.sealpost.test", []string{"rua@reports.example", "gone@reports.example"}, msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "report delivered", func() bool { return len(h.d.to("rua@reports.example")) == 1 })
	if m := h.d.to("rua@reports.example")[0]; !m.Report || string(m.Body) != string(msg) {
		t.Errorf("report delivered with TLSReport=%v, body %q; want the report flag and the bytes as given", m.Report, m.Body)
	}
	waitFor(t, "bounce passed on", func() bool { mu.Lock(); defer mu.Unlock(); return len(bounced) == 1 })
	if bounced[0] != "gone@reports.example: 550 5.1.1 no such user\r\nInjected: header" {
		t.Errorf("ReportBounced got %q", bounced[0])
	}
	err := h.q.SendReport(context.Background(), "tlsrpt@mta.sealpost.test", nil, msg)
	var re *queue.RejectError
	if !errors.As(err, &re) || re.Temporary() {
		t.Errorf("SendReport without recipients = %v, want a permanent error", err)
	}
}
