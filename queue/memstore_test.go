package queue_test

import (
	"testing"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) queue.Store { return &queue.MemoryStore{} })
}
