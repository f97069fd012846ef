package vk

import (
	"strings"
	"testing"

	vulkan "github.com/vulkan-go/vulkan"
)

// TestValidationMessagesAreCaptured makes one deliberate invalid call (a descriptor pool with maxSets = 0, which
// drivers tolerate) and checks that the layer's message reaches Messages: without this, a broken callback would
// make every "no validation messages" check pass vacuously.
func TestValidationMessagesAreCaptured(t *testing.T) {
	d, err := Open(Options{Instance: InstanceOptions{Validation: ValidationOn}, PipelineCacheDir: "off"})
	if err != nil {
		t.Fatalf("%v (run scripts/setup to install a driver and the validation layer)", err)
	}
	var pool vulkan.DescriptorPool
	r := vulkan.CreateDescriptorPool(d.handle, &vulkan.DescriptorPoolCreateInfo{
		SType: vulkan.StructureTypeDescriptorPoolCreateInfo, MaxSets: 0, PoolSizeCount: 1,
		PPoolSizes: []vulkan.DescriptorPoolSize{{Type: vulkan.DescriptorTypeStorageBuffer, DescriptorCount: 1}},
	}, nil, &pool)
	if r == vulkan.Success {
		vulkan.DestroyDescriptorPool(d.handle, pool, nil)
	}
	inst := d.Instance()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := inst.Messages()
	found := false
	for _, m := range msgs {
		found = found || (m.Severity == "error" && strings.Contains(m.Text, "maxSets"))
	}
	if !found {
		t.Fatalf("the layer's maxSets error was not captured; got %d messages: %v", len(msgs), msgs)
	}
}
