// docs/dsl.md, "Running a network": forward, state entries, weights as
// .safetensors, tensors as .npy. Writes its files under the directory given
// as the first argument (default: the current directory).
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "ctseg/interop.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv", conv<8, kernel<3>, padding<1>, no_bias>>, named<"bn", batch_norm<>>, relu,
                named<"head", conv<2, kernel<1>>>>;
using bound = bind<net, shape<1, 32, 32>>;
using model_t = network<bound>;  // float; network<bound, double> computes in double

int main(int argc, char** argv) {
    const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
    auto model = std::make_unique<model_t>(/*seed=*/7);

    // Parameters and buffers by their PyTorch names; the spans point into the model.
    for (auto& e : model->state_entries())
        if (e.name == "bn.running_var")
            for (float& v : e.values) v = 4.0f;
    model->state_changed();  // written directly: refresh what inference derives (the folded norm)

    // Save, and load into another model.
    interop::save_state_dict(*model, dir / "weights.safetensors");
    auto other = std::make_unique<model_t>(/*seed=*/0);
    interop::load_state_dict(*other, dir / "weights.safetensors");  // calls other->state_changed()

    // A batch of 3 samples, N x C x H x W, stored as .npy and read back.
    const std::int64_t batch = 3;
    std::vector<float> x(std::size_t(batch) * model_t::input_size);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) / 17.0f;
    interop::write_npy(dir / "input.npy", interop::host_tensor::from(x, {batch, 1, 32, 32}));
    const auto in = interop::read_npy_as<float>(dir / "input.npy");

    // forward is const: several threads may run one model at once.
    std::vector<float> y1(std::size_t(batch) * model_t::output_size), y2(y1.size());
    std::thread t1([&] { model->forward(batch, in.values.data(), y1.data()); });
    std::thread t2([&] { model->forward(batch, in.values.data(), y2.data()); });
    t1.join();
    t2.join();
    const std::vector<float> y3 = other->forward(in.values);  // batch size from the input length
    interop::write_npy(dir / "output.npy", interop::host_tensor::from(y1, {batch, 2, 32, 32}));

    const bool same = y1 == y2 && y1 == y3;
    std::printf("output [3, 2, 32, 32]; threads and the loaded model %s\n", same ? "agree" : "differ");
    return same ? 0 : 1;
}
