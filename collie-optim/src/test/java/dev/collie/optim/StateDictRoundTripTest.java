package dev.collie.optim;

import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.HessianEstimator;
import dev.collie.core.optim.Optimizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Two steps, save the state, load it into a fresh optimizer, two more steps on both: identical weights. */
class StateDictRoundTripTest {
    private static Function<Map<String, Parameter>, Optimizer> factory(String name) {
        return switch (name) {
            case "adamw" -> p -> new AdamW(p, 0.9, 0.95, 1e-8, 0.1);
            case "lion" -> p -> new Lion(p, 0.9, 0.99, 0.1);
            case "adan" -> p -> new Adan(p, 0.98, 0.92, 0.99, 1e-8, 0.02, 1.0, false);
            case "sophia" -> p -> new SophiaG(p, 0.965, 0.99, 0.04, 0.1, 64, 1);
            case "lomo" -> p -> new Lomo(p, 1.0, 0.5, 0.1, new DynamicLossScaler(4, 2, 3, 1));
            case "adalomo" -> p -> new AdaLomo(p, 1e-30, 1e-3, 1.0, -0.8, 1.0, 0.5, 0.1);
            default -> throw new IllegalArgumentException(name);
        };
    }

    private static List<Parameter> params(List<INDArray> values) {
        List<Parameter> out = new ArrayList<>();
        for (INDArray v : values) {
            out.add(new Parameter(v.dup()));
        }
        return out;
    }

    private static Map<String, Parameter> named(List<Parameter> ps) {
        Map<String, Parameter> m = new LinkedHashMap<>();
        m.put("w", ps.get(0));
        m.put("b", ps.get(1));
        return m;
    }

    private static void step(Optimizer opt, List<Parameter> ps, int seed) {
        Nd4j.getRandom().setSeed(seed);
        List<INDArray> g = List.of(Nd4j.randn(DataType.FLOAT, 4, 6), Nd4j.randn(DataType.FLOAT, 6));
        if (opt instanceof FusedBackwardOptimizer f) {
            Drive.fusedStep(f, 1e-2, ps, g);
            return;
        }
        for (int i = 0; i < ps.size(); i++) {
            Drive.deliver(ps.get(i), g.get(i));
        }
        opt.step(1e-2);
        if (opt instanceof HessianEstimator h) {
            for (int i = 0; i < ps.size(); i++) {
                Drive.deliver(ps.get(i), g.get(i).mul(0.3));
            }
            h.updateHessian();
            ps.forEach(Parameter::zeroGrad);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw", "lion", "adan", "sophia", "lomo", "adalomo"})
    void stateDictRoundTripsExactly(String name) {
        Nd4j.getRandom().setSeed(99);
        List<Parameter> a = params(List.of(Nd4j.randn(DataType.FLOAT, 4, 6), Nd4j.randn(DataType.FLOAT, 6)));
        Optimizer first = factory(name).apply(named(a));
        step(first, a, 1);
        step(first, a, 2);
        Map<String, INDArray> saved = new LinkedHashMap<>();
        first.stateDict().forEach((k, v) -> saved.put(k, v.dup()));
        assertFalse(saved.isEmpty());

        List<Parameter> b = params(List.of(a.get(0).data(), a.get(1).data()));
        Optimizer second = factory(name).apply(named(b));
        second.loadStateDict(saved);
        assertEquals(first.stateBytes(), second.stateBytes());
        for (int s = 3; s <= 4; s++) {
            step(first, a, s);
            step(second, b, s);
        }
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).data(), b.get(i).data(), name + ": parameter " + i);
        }
        Map<String, INDArray> sa = first.stateDict();
        Map<String, INDArray> sb = second.stateDict();
        assertEquals(sa.keySet(), sb.keySet());
        sa.forEach((k, v) -> assertEquals(v, sb.get(k), name + ": state " + k));
    }
}
