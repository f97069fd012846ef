package vk

import (
	"runtime"

	vulkan "github.com/vulkan-go/vulkan"
)

// setsPerPool is how many descriptor sets each pool holds; pools are added as sets are needed.
const setsPerPool = 512

// bindKey identifies what one binding points at: a block's VkBuffer and a byte range of it.
type bindKey struct {
	buf       vulkan.Buffer
	off, size uint64
}

// setKey identifies a descriptor set by layout and bindings (with how each is bound: storage buffer or texel
// view). Buffers are ranges of long-lived blocks, so a set stays valid for as long as its blocks do and can be
// shared by every dispatch that binds the same ranges — a training step re-binds the same tensors every iteration
// and allocates no new sets (nor texel views).
type setKey struct {
	layout vulkan.DescriptorSetLayout
	n      int
	b      [MaxBindings]bindKey
	acc    [MaxBindings]Access
}

// descriptorCache hands out descriptor sets, cached by setKey. It is used with the device's mutex held.
type descriptorCache struct {
	pools []vulkan.DescriptorPool
	left  int // sets still free in the newest pool
	sets  map[setKey]setEntry
}

type setEntry struct {
	set   vulkan.DescriptorSet
	pool  vulkan.DescriptorPool
	views []vulkan.BufferView // the texel views its texel bindings point at, destroyed with it
}

func (c *descriptorCache) init() { c.sets = map[setKey]setEntry{} }

// get returns the set for key, writing a new one on first use.
func (c *descriptorCache) get(dev vulkan.Device, t procs, key setKey) (vulkan.DescriptorSet, error) {
	if e, ok := c.sets[key]; ok {
		return e.set, nil
	}
	if c.left == 0 {
		// FREE_DESCRIPTOR_SET lets sets of a released dedicated block go back individually.
		pool, r := t.createDescriptorPool(dev, setsPerPool, setsPerPool*MaxBindings)
		if err := resultError("vkCreateDescriptorPool", r); err != nil {
			return nil, err
		}
		c.pools = append(c.pools, pool)
		c.left = setsPerPool
	}
	pool := c.pools[len(c.pools)-1]
	sets := make([]vulkan.DescriptorSet, 1)
	layouts := []vulkan.DescriptorSetLayout{key.layout}
	err := resultError("vkAllocateDescriptorSets", vulkan.AllocateDescriptorSets(dev, &vulkan.DescriptorSetAllocateInfo{
		SType: vulkan.StructureTypeDescriptorSetAllocateInfo, DescriptorPool: pool, DescriptorSetCount: 1,
		PSetLayouts: layouts,
	}, &sets[0]))
	runtime.KeepAlive(layouts) // only vulkan-go's C copy points at it during the call
	if err != nil {
		return nil, err
	}
	c.left--
	var views [MaxBindings]vulkan.BufferView
	var made []vulkan.BufferView
	for i := 0; i < key.n; i++ {
		if key.acc[i].texelSize() == 0 {
			continue
		}
		var v vulkan.BufferView
		if err := resultError("vkCreateBufferView", vulkan.CreateBufferView(dev, &vulkan.BufferViewCreateInfo{
			SType: vulkan.StructureTypeBufferViewCreateInfo, Buffer: key.b[i].buf, Format: key.acc[i].texelFormat(),
			Offset: vulkan.DeviceSize(key.b[i].off), Range: vulkan.DeviceSize(key.b[i].size),
		}, nil, &v)); err != nil {
			for _, m := range made {
				vulkan.DestroyBufferView(dev, m, nil)
			}
			set := sets[0]
			vulkan.FreeDescriptorSets(dev, pool, 1, &set)
			c.left++
			return nil, err
		}
		views[i] = v
		made = append(made, v)
	}
	t.writeDescriptors(dev, sets[0], key.b[:key.n], key.acc[:key.n], views[:key.n])
	c.sets[key] = setEntry{set: sets[0], pool: pool, views: made}
	return sets[0], nil
}

// release frees a cached set and destroys its texel views.
func (e setEntry) release(dev vulkan.Device) {
	set := e.set
	vulkan.FreeDescriptorSets(dev, e.pool, 1, &set)
	for _, v := range e.views {
		vulkan.DestroyBufferView(dev, v, nil)
	}
}

// drop frees every set that points into buf (a block about to be released).
func (c *descriptorCache) drop(dev vulkan.Device, buf vulkan.Buffer) {
	for k, e := range c.sets {
		for i := 0; i < k.n; i++ {
			if k.b[i].buf == buf {
				e.release(dev)
				delete(c.sets, k)
				break
			}
		}
	}
}

func (c *descriptorCache) destroy(dev vulkan.Device) {
	for _, e := range c.sets {
		for _, v := range e.views {
			vulkan.DestroyBufferView(dev, v, nil)
		}
	}
	for _, p := range c.pools {
		vulkan.DestroyDescriptorPool(dev, p, nil)
	}
	c.pools, c.sets, c.left = nil, nil, 0
}

// dropDescriptorSets forgets the cached sets that bind a block's buffer; called with the device mutex held.
func (d *Device) dropDescriptorSets(buf vulkan.Buffer) { d.descs.drop(d.handle, buf) }
