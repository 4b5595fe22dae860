package llamafactory

import "encoding/json"

// auto is DeepSpeed's placeholder for a value the Hugging Face trainer
// fills in from its own arguments (batch sizes, clipping, precision), so
// the one file serves every GPU count and batch size.
const auto = "auto"

type dsConfig struct {
	TrainBatchSize             any    `json:"train_batch_size"`
	TrainMicroBatchSizePerGPU  any    `json:"train_micro_batch_size_per_gpu"`
	GradientAccumulationSteps  any    `json:"gradient_accumulation_steps"`
	GradientClipping           any    `json:"gradient_clipping"`
	ZeroAllowUntestedOptimizer bool   `json:"zero_allow_untested_optimizer"`
	FP16                       dsFP16 `json:"fp16"`
	BF16                       dsBF16 `json:"bf16"`
	Zero                       dsZero `json:"zero_optimization"`
}

type dsFP16 struct {
	Enabled           any `json:"enabled"`
	LossScale         int `json:"loss_scale"`
	LossScaleWindow   int `json:"loss_scale_window"`
	InitialScalePower int `json:"initial_scale_power"`
	Hysteresis        int `json:"hysteresis"`
	MinLossScale      int `json:"min_loss_scale"`
}

type dsBF16 struct {
	Enabled any `json:"enabled"`
}

type dsZero struct {
	Stage                     int   `json:"stage"`
	OverlapComm               bool  `json:"overlap_comm"`
	ContiguousGradients       bool  `json:"contiguous_gradients"`
	SubGroupSize              int64 `json:"sub_group_size"`
	ReduceBucketSize          any   `json:"reduce_bucket_size"`
	PrefetchBucketSize        any   `json:"stage3_prefetch_bucket_size"`
	ParamPersistenceThreshold any   `json:"stage3_param_persistence_threshold"`
	MaxLiveParameters         int64 `json:"stage3_max_live_parameters"`
	MaxReuseDistance          int64 `json:"stage3_max_reuse_distance"`
	Gather16BitWeightsOnSave  bool  `json:"stage3_gather_16bit_weights_on_model_save"`
}

// DeepSpeedZeRO3 returns the ZeRO-3 configuration (no offload) that
// LLaMA-Factory's examples/deepspeed/ds_z3_config.json describes, and the
// SWE-Lego configs name: batch sizes, clipping and precision "auto" (taken
// from the training YAML), parameters, gradients and optimizer state
// sharded, and 16-bit weights gathered when the model is saved so the
// checkpoint is an ordinary Hugging Face directory. The bytes are the same
// on every call.
func DeepSpeedZeRO3() []byte {
	c := dsConfig{
		TrainBatchSize:             auto,
		TrainMicroBatchSizePerGPU:  auto,
		GradientAccumulationSteps:  auto,
		GradientClipping:           auto,
		ZeroAllowUntestedOptimizer: true,
		FP16: dsFP16{
			Enabled:           auto,
			LossScale:         0, // dynamic loss scaling
			LossScaleWindow:   1000,
			InitialScalePower: 16,
			Hysteresis:        2,
			MinLossScale:      1,
		},
		BF16: dsBF16{Enabled: auto},
		Zero: dsZero{
			Stage:                     3,
			OverlapComm:               false,
			ContiguousGradients:       true,
			SubGroupSize:              1_000_000_000,
			ReduceBucketSize:          auto,
			PrefetchBucketSize:        auto,
			ParamPersistenceThreshold: auto,
			MaxLiveParameters:         1_000_000_000,
			MaxReuseDistance:          1_000_000_000,
			Gather16BitWeightsOnSave:  true,
		},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // fixed value of plain types
	}
	return append(b, '\n')
}
