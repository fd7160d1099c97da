using SafeCoDe.Torch.Runtime;
var r = NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
Console.WriteLine(r);
using var t = TorchSharp.torch.ones(2, 2).matmul(TorchSharp.torch.ones(2, 2));
Console.WriteLine(t.sum().item<float>());
