package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceBasic(t *testing.T) {
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	createTopic(t, adm, "t1", 3, nil)
	cl := newClient(t, b, kgo.DefaultProduceTopic("t1"))
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte("hello"), Partition: int32(i % 3)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}
