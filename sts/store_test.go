package sts

import (
	"context"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	var s MemoryStore // the zero value is an empty store
	if _, ok, err := s.Get(ctx, "example.com"); ok || err != nil {
		t.Fatalf("Get from an empty store: %v, %v", ok, err)
	}
	if err := s.Delete(ctx, "example.com"); err != nil {
		t.Fatalf("Delete of a missing domain: %v", err)
	}
	now := time.Now()
	a := StoredPolicy{Domain: "b.example", ID: "1", Text: nonePolicy, FetchedAt: now, Expires: now.Add(time.Hour)}
	b := StoredPolicy{Domain: "a.example", ID: "2", Text: enforcePolicy, FetchedAt: now, Expires: now.Add(time.Hour)}
	s.Put(ctx, a)
	s.Put(ctx, b)
	a.ID = "3"
	s.Put(ctx, a) // replaces
	got, ok, _ := s.Get(ctx, "b.example")
	if !ok || got != a {
		t.Fatalf("Get = %+v, %v; want %+v", got, ok, a)
	}
	list, _ := s.List(ctx)
	if len(list) != 2 || list[0] != b || list[1] != a {
		t.Fatalf("List = %+v", list)
	}
	s.Delete(ctx, "a.example")
	if list, _ := s.List(ctx); len(list) != 1 || list[0] != a {
		t.Fatalf("List after Delete = %+v", list)
	}
}
